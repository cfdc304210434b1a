import { describe, expect, it } from "vitest";
import { match, parseHash, href } from "./router.js";

describe("routes", () => {
  it("matches a pattern and decodes its parameters", () => {
    expect(match("/nodes/:id", "/nodes/mi-0123")).toEqual({ id: "mi-0123" });
    expect(match("/parameters/:name", "/parameters/%2Fapp%2Fdb")).toEqual({ name: "/app/db" });
    expect(match("/nodes/:id", "/nodes")).toBeNull();
    expect(match("/fleet", "/nodes/x")).toBeNull();
  });

  it("reads the path and query of a hash", () => {
    expect(parseHash("#/run?document=AWS-RunShellScript&target=mi-1")).toEqual({
      path: "/run",
      query: { document: "AWS-RunShellScript", target: "mi-1" },
    });
    expect(parseHash("")).toEqual({ path: "/", query: {} });
  });

  it("writes a hash with only the query values given", () => {
    expect(href("/run", { document: "AWS-RunShellScript", target: undefined, x: "" })).toBe("#/run?document=AWS-RunShellScript");
    expect(href("/fleet")).toBe("#/fleet");
  });
});
