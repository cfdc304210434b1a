// The console is served by the api function under /console/ (same origin as
// the API, so the browser's signed calls need no CORS).
import { defineConfig } from "vite";

export default defineConfig({
  base: "/console/",
  build: {
    outDir: "dist",
    assetsDir: "assets",
    // Hashed names: the api function serves them as immutable.
    sourcemap: false,
    chunkSizeWarningLimit: 1024,
  },
  test: {
    environment: "node",
    include: ["src/**/*.test.js"],
  },
});
