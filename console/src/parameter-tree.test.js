import { describe, expect, it } from "vitest";
import { ancestors, arnLength, buildTree, filterByName, nameProblems, putProblems } from "./parameter-tree.js";

const REGION = "us-east-1";

describe("the parameter tree", () => {
  it("splits names on / into sorted folders and parameters", () => {
    const t = buildTree(["/app/db/url", "/app/db/password", "/app/name", "plain", "/other"]);
    expect(t.count).toBe(5);
    expect(t.parameters.map((p) => p.name)).toEqual(["/other", "plain"]);
    expect(t.folders.map((f) => f.path)).toEqual(["/app"]);
    const app = t.folders[0];
    expect(app.count).toBe(3);
    expect(app.parameters.map((p) => p.segment)).toEqual(["name"]);
    expect(app.folders[0]).toMatchObject({ segment: "db", path: "/app/db", count: 2 });
    expect(app.folders[0].parameters.map((p) => p.segment)).toEqual(["password", "url"]);
  });

  it("keeps the described parameter with its leaf, and a name that is also a folder", () => {
    const t = buildTree([{ Name: "/a/b", Type: "String" }, { Name: "/a/b/c", Type: "SecureString" }]);
    const a = t.folders[0];
    expect(a.parameters[0]).toMatchObject({ segment: "b", name: "/a/b", meta: { Type: "String" } });
    expect(a.folders[0].parameters[0].meta.Type).toBe("SecureString");
  });

  it("filters by a part of the name, in any case", () => {
    expect(filterByName(["/App/x", "/b/y", "z"], "app")).toEqual(["/App/x"]);
    expect(filterByName([{ Name: "/q" }], "  ")).toEqual([{ Name: "/q" }]);
  });

  it("names the folders leading to a parameter", () => {
    expect(ancestors("/a/b/c")).toEqual(["/a", "/a/b"]);
    expect(ancestors("plain")).toEqual([]);
  });
});

describe("the name rules SSM applies", () => {
  it("accepts good names", () => {
    for (const ok of ["/app/db/url", "plain", "my_name.v-1", "/app/aws/ssm", "myaws", "/" + "l/".repeat(14) + "x"]) {
      expect(nameProblems(ok, REGION), ok).toEqual([]);
    }
  });

  it("refuses the names SSM refuses", () => {
    for (const bad of [
      "", "awsx", "SSMx", "/awsx", "/aws/x", "/ssm/x", "/Ssm-things/x", "a b", "a$b", "/a/b:c", "/a//b", "/a/", "/",
      "a/b", "é", "/" + "l/".repeat(15) + "x", "/" + "a".repeat(1011),
    ]) {
      expect(nameProblems(bad, REGION).length, bad).toBeGreaterThan(0);
    }
    expect(nameProblems("aws-thing", REGION)[0]).toMatch(/aws/);
    expect(nameProblems("/" + "l/".repeat(15) + "x", REGION)[0]).toMatch(/15 levels/);
  });

  it("counts the name's full ARN against 1011 characters, as the API does", () => {
    // arn:aws:ssm:us-east-1:<12 digits>:parameter/ is 45 characters.
    expect(arnLength("/app", REGION)).toBe(45 + 3);
    expect(arnLength("app", REGION)).toBe(45 + 3);
    const longest = "/" + "a".repeat(1011 - 45);
    expect(arnLength(longest, REGION)).toBe(1011);
    expect(nameProblems(longest, REGION)).toEqual([]);
    expect(nameProblems(longest.slice(1), REGION)).toEqual([]);
    const over = longest + "a";
    expect(nameProblems(over, REGION)).toEqual([
      "A name's ARN (arn:aws:ssm:us-east-1:<account>:parameter/ and the name) has at most 1011 characters; this one's would have 1012. Shorten the name by 1.",
    ]);
    // A longer region leaves less for the name.
    expect(nameProblems(longest, "ap-southeast-2")[0]).toMatch(/would have 1016/);
    expect(putProblems({ name: over, region: REGION, type: "String", value: "x" })[0]).toMatch(/1011/);
  });

  it("limits values by tier", () => {
    const base = { name: "/a", region: REGION, type: "String", tier: "Standard" };
    expect(putProblems({ ...base, value: "x".repeat(4096) })).toEqual([]);
    expect(putProblems({ ...base, value: "x".repeat(4097) })[0]).toMatch(/4096/);
    expect(putProblems({ ...base, tier: "Advanced", value: "x".repeat(8192) })).toEqual([]);
    expect(putProblems({ ...base, tier: "Advanced", value: "x".repeat(8193) })[0]).toMatch(/8192/);
    expect(putProblems({ ...base, value: "" })).toEqual(["Enter a value."]);
    expect(putProblems({ ...base, type: "Secret", value: "x" })[0]).toMatch(/type/);
    expect(putProblems({ ...base, value: "x", description: "d".repeat(1025) })[0]).toMatch(/description/);
  });
});
