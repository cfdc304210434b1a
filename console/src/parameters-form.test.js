import { describe, expect, it } from "vitest";
import {
  buildFields,
  checkField,
  checkForm,
  checkMaxConcurrency,
  checkMaxErrors,
  checkTimeoutSeconds,
  contentParameters,
  initialValues,
  parseNodeIds,
  splitLines,
} from "./parameters-form.js";

// AWS-RunShellScript as DescribeDocument and GetDocument (JSON) give it.
const RUN_SHELL_DECLARED = [
  { Name: "commands", Type: "StringList", Description: "(Required) Specify a shell script or a command to run." },
  { Name: "workingDirectory", Type: "String", Description: "(Optional) The path to the working directory.", DefaultValue: "" },
  { Name: "executionTimeout", Type: "String", Description: "(Optional) The time in seconds.", DefaultValue: "3600" },
];
const RUN_SHELL_CONTENT = JSON.stringify({
  schemaVersion: "1.2",
  parameters: {
    commands: { type: "StringList", description: "(Required)", minItems: 1, displayType: "textarea" },
    workingDirectory: { type: "String", default: "", maxChars: 4096 },
    executionTimeout: {
      type: "String",
      default: "3600",
      allowedPattern: "([1-9][0-9]{0,4})|(1[0-6][0-9]{4})|(17[0-1][0-9]{3})|(172[0-7][0-9]{2})|(172800)",
    },
  },
});

function runShell() {
  return buildFields(RUN_SHELL_DECLARED, contentParameters(RUN_SHELL_CONTENT));
}

const byName = (fields, name) => fields.find((f) => f.name === name);

describe("fields from a document's parameters", () => {
  it("takes types, defaults and constraints from the declaration and the content", () => {
    const fields = runShell();
    expect(fields.map((f) => f.name)).toEqual(["commands", "workingDirectory", "executionTimeout"]);
    const commands = byName(fields, "commands");
    expect(commands).toMatchObject({ type: "StringList", required: true, control: "textarea", minItems: 1, default: undefined });
    expect(byName(fields, "workingDirectory")).toMatchObject({ required: false, default: [""], control: "text", maxChars: 4096 });
    expect(byName(fields, "executionTimeout")).toMatchObject({ required: false, default: ["3600"], control: "text" });
    expect(byName(fields, "executionTimeout").allowedPattern).toContain("172800");
  });

  it("picks a control for each type", () => {
    const fields = buildFields(
      [
        { Name: "flag", Type: "Boolean", DefaultValue: "true" },
        { Name: "count", Type: "Integer", DefaultValue: "5" },
        { Name: "level", Type: "String", DefaultValue: "low" },
        { Name: "map", Type: "StringMap", DefaultValue: '{"a":"b"}' },
        { Name: "maps", Type: "MapList" },
        { Name: "tags", Type: "StringList" },
        { Name: "pick", Type: "StringList" },
        { Name: "script", Type: "String" },
      ],
      {
        level: { type: "String", default: "low", allowedValues: ["low", "high"] },
        pick: { type: "StringList", allowedValues: ["a", "b", "c"] },
        script: { type: "String", displayType: "textarea" },
        count: { type: "Integer", default: 5 },
        flag: { type: "Boolean", default: true },
      },
    );
    const controls = Object.fromEntries(fields.map((f) => [f.name, f.control]));
    expect(controls).toEqual({
      flag: "checkbox",
      count: "number",
      level: "select",
      map: "textarea",
      maps: "textarea",
      tags: "textarea",
      pick: "multiselect",
      script: "textarea",
    });
    expect(initialValues(fields)).toEqual({
      flag: true,
      count: "5",
      level: "low",
      map: '{\n  "a": "b"\n}',
      maps: "",
      tags: "",
      pick: [],
      script: "",
    });
  });

  it("reads typed defaults of the content as wire values", () => {
    const fields = buildFields(
      [
        { Name: "list", Type: "StringList", DefaultValue: '["a","b"]' },
        { Name: "one", Type: "StringList", DefaultValue: "solo" },
        { Name: "off", Type: "Boolean", DefaultValue: "false" },
      ],
      { list: { type: "StringList", default: ["a", "b"] }, off: { type: "Boolean", default: false } },
    );
    expect(byName(fields, "list").default).toEqual(["a", "b"]);
    expect(byName(fields, "one").default).toEqual(["solo"]);
    expect(byName(fields, "off").default).toEqual(["false"]);
    expect(initialValues(fields)).toEqual({ list: "a\nb", one: "solo", off: false });
  });

  it("prefills given values over the defaults", () => {
    const fields = runShell();
    expect(initialValues(fields, { commands: ["echo one", "echo two"] })).toEqual({
      commands: "echo one\necho two",
      workingDirectory: "",
      executionTimeout: "3600",
    });
  });

  it("reads no parameters from content that is not JSON", () => {
    expect(contentParameters("schemaVersion: '2.2'")).toEqual({});
    expect(contentParameters("")).toEqual({});
    expect(contentParameters('{"schemaVersion":"2.2"}')).toEqual({});
  });
});

describe("checking values before sending", () => {
  it("splits a StringList one item per line", () => {
    expect(splitLines("\n echo a\r\n\necho b\r\n\n")).toEqual([" echo a", "", "echo b"]);
    expect(splitLines("   \n")).toEqual([]);
    const r = checkForm(runShell(), { commands: "echo one\necho two\n", workingDirectory: "", executionTimeout: "3600" });
    expect(r).toEqual({ ok: true, errors: {}, parameters: { commands: ["echo one", "echo two"] } });
  });

  it("refuses a required parameter without a default left empty", () => {
    const r = checkForm(runShell(), { commands: "\n\n", workingDirectory: "", executionTimeout: "3600" });
    expect(r.ok).toBe(false);
    expect(r.errors.commands).toMatch(/Required/);
    const name = buildFields([{ Name: "serviceName", Type: "String" }], {});
    expect(checkField(name[0], "").error).toMatch(/Required/);
    expect(checkField(name[0], "sshd")).toEqual({ wire: ["sshd"] });
  });

  it("leaves an optional parameter at its default unsent", () => {
    const fields = runShell();
    expect(checkField(byName(fields, "executionTimeout"), "3600")).toEqual({ omit: true });
    expect(checkField(byName(fields, "executionTimeout"), "")).toEqual({ omit: true });
    expect(checkField(byName(fields, "executionTimeout"), "60")).toEqual({ wire: ["60"] });
    expect(checkField(byName(fields, "workingDirectory"), "/tmp")).toEqual({ wire: ["/tmp"] });
  });

  it("checks the whole value against allowedPattern", () => {
    const timeout = byName(runShell(), "executionTimeout");
    expect(checkField(timeout, "abc").error).toMatch(/does not match the allowed pattern/);
    // Unanchored alternation: a value only partly matching is refused.
    expect(checkField(timeout, "600x").error).toMatch(/allowed pattern/);
    expect(checkField(timeout, "172801").error).toMatch(/allowed pattern/);
    expect(checkField(timeout, "172800")).toEqual({ wire: ["172800"] });
  });

  it("checks allowedValues, of a String and of each StringList item", () => {
    const [level, pick] = buildFields(
      [
        { Name: "level", Type: "String" },
        { Name: "pick", Type: "StringList", DefaultValue: '["a"]' },
      ],
      { level: { type: "String", allowedValues: ["low", "high"] }, pick: { type: "StringList", default: ["a"], allowedValues: ["a", "b"] } },
    );
    expect(checkField(level, "").error).toBe("Required: choose one of low, high.");
    expect(checkField(level, "loud").error).toBe('"loud" is not an allowed value; use one of low, high.');
    expect(checkField(level, "high")).toEqual({ wire: ["high"] });
    expect(checkField(pick, ["a", "z"]).error).toMatch(/"z" is not an allowed value/);
    expect(checkField(pick, ["a", "b"])).toEqual({ wire: ["a", "b"] });
    expect(checkField(pick, ["a"])).toEqual({ omit: true });
  });

  it("checks types: Integer, Boolean, StringMap, MapList", () => {
    const fields = buildFields(
      [
        { Name: "count", Type: "Integer" },
        { Name: "flag", Type: "Boolean", DefaultValue: "false" },
        { Name: "map", Type: "StringMap" },
        { Name: "maps", Type: "MapList" },
      ],
      {},
    );
    const [count, flag, map, maps] = fields;
    expect(checkField(count, "1.5").error).toMatch(/not a whole number/);
    expect(checkField(count, "ten").error).toMatch(/not a whole number/);
    expect(checkField(count, "-3")).toEqual({ wire: ["-3"] });
    expect(checkField(count, "").error).toMatch(/Required/);
    expect(checkField(flag, true)).toEqual({ wire: ["true"] });
    expect(checkField(flag, false)).toEqual({ omit: true });
    expect(checkField(map, "[1]").error).toMatch(/JSON object/);
    expect(checkField(map, "{nope").error).toMatch(/JSON object/);
    expect(checkField(map, '{ "a": "b" }')).toEqual({ wire: ['{"a":"b"}'] });
    expect(checkField(maps, '{"a":1}\n{"b":2}')).toEqual({ wire: ['{"a":1}', '{"b":2}'] });
    expect(checkField(maps, '[{"a":1},{"b":2}]')).toEqual({ wire: ['{"a":1}', '{"b":2}'] });
    expect(checkField(maps, '{"a":1}\n"x"').error).toMatch(/JSON object/);
  });

  it("checks minItems, maxItems, minChars and maxChars", () => {
    const [list, name] = buildFields(
      [
        { Name: "list", Type: "StringList" },
        { Name: "name", Type: "String" },
      ],
      { list: { type: "StringList", minItems: 2, maxItems: 3 }, name: { type: "String", minChars: 2, maxChars: 4 } },
    );
    expect(checkField(list, "a").error).toMatch(/at least 2/);
    expect(checkField(list, "a\nb\nc\nd").error).toMatch(/at most 3/);
    expect(checkField(list, "a\nb")).toEqual({ wire: ["a", "b"] });
    expect(checkField(name, "a").error).toMatch(/shorter/);
    expect(checkField(name, "abcde").error).toMatch(/longer/);
    expect(checkField(name, "abc")).toEqual({ wire: ["abc"] });
  });

  it("leaves a Parameter Store reference for the service to resolve", () => {
    const [count] = buildFields([{ Name: "n", Type: "String" }], { n: { type: "String", allowedPattern: "[0-9]+" } });
    expect(checkField(count, "{{ssm:/app/count}}")).toEqual({ wire: ["{{ssm:/app/count}}"] });
  });

  it("checks rate control, the delivery timeout and node ids", () => {
    expect(checkMaxConcurrency("50")).toBeNull();
    expect(checkMaxConcurrency("10%")).toBeNull();
    expect(checkMaxConcurrency("0")).toMatch(/not a number/);
    expect(checkMaxConcurrency("")).toMatch(/Give/);
    expect(checkMaxErrors("0")).toBeNull();
    expect(checkMaxErrors("0%")).toBeNull();
    expect(checkMaxErrors("-1")).toMatch(/not a number/);
    expect(checkTimeoutSeconds("")).toBeNull();
    expect(checkTimeoutSeconds("600")).toBeNull();
    expect(checkTimeoutSeconds("5")).toMatch(/between 30/);
    expect(checkTimeoutSeconds("1.5")).toMatch(/whole number/);
    expect(parseNodeIds("mi-1\nmi-2, mi-1  mi-3\n")).toEqual(["mi-1", "mi-2", "mi-3"]);
  });
});

describe("the history's Invoked after filter", async () => {
  const { invokedAfterValue } = await import("./pages/commands.js");
  it("reads a datetime-local value as UTC, in ISO 8601", () => {
    expect(invokedAfterValue("2026-01-31T09:30")).toBe("2026-01-31T09:30:00Z");
    expect(invokedAfterValue("2026-01-31T09:30:15")).toBe("2026-01-31T09:30:15Z");
    expect(invokedAfterValue("2026-01-31")).toBe("2026-01-31T00:00:00Z");
    expect(invokedAfterValue("")).toBe("");
    expect(invokedAfterValue("yesterday")).toBeNull();
    expect(invokedAfterValue("2026-13-45T99:99")).toBeNull();
  });
});
