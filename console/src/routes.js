// Every page of the console. Each module under pages/ exports `routes`:
// { path, title, nav?, order?, component }, where `path` is a pattern
// ("/nodes/:id"), `nav` the label in the navigation bar (pages reached only
// by links have none) and `component` takes { params, query }. Collected
// here, so a new page touches no other file.
const modules = import.meta.glob("./pages/*.js", { eager: true });

export const routes = Object.values(modules)
  .flatMap((m) => m.routes || [])
  .sort((a, b) => (a.order ?? 100) - (b.order ?? 100));

export const HOME = "/fleet";
