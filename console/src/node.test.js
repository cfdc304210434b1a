import { describe, expect, it } from "vitest";
import { chunks, eachLimited, mergeErrors, patchSummary } from "./pages/fleet.js";
import { inventoryColumns, nodeFacts, patchFacts } from "./pages/node.js";
import { ApiError } from "./errors.js";

describe("fleet columns", () => {
  it("splits ids into batches of at most 50", () => {
    const ids = Array.from({ length: 120 }, (_, i) => `mi-${i}`);
    const batches = chunks(ids, 50);
    expect(batches.map((b) => b.length)).toEqual([50, 50, 20]);
    expect(batches.flat()).toEqual(ids);
    expect(chunks([], 50)).toEqual([]);
  });

  it("says a patch state in a word or two", () => {
    expect(patchSummary({ MissingCount: 3, FailedCount: 0 })).toBe("3 missing");
    expect(patchSummary({ MissingCount: 0, FailedCount: 2 })).toBe("2 failed");
    expect(patchSummary({ MissingCount: 1, FailedCount: 1 })).toBe("1 missing, 1 failed");
    expect(patchSummary({ MissingCount: 0, FailedCount: 0, InstalledCount: 9 })).toBe("compliant");
    expect(patchSummary(null)).toBe("");
  });

  it("runs at most `limit` calls at once, every item once", async () => {
    let running = 0;
    let most = 0;
    const seen = [];
    await eachLimited([1, 2, 3, 4, 5, 6, 7], 3, async (i) => {
      running++;
      most = Math.max(most, running);
      await new Promise((r) => setTimeout(r, 5));
      seen.push(i);
      running--;
    });
    expect(most).toBe(3);
    expect(seen.sort()).toEqual([1, 2, 3, 4, 5, 6, 7]);
  });

  it("stops starting calls once told to", async () => {
    const seen = [];
    await eachLimited([1, 2, 3, 4], 1, async (i) => seen.push(i), () => seen.length >= 2);
    expect(seen).toEqual([1, 2]);
  });

  it("merges refusals into one error that keeps every message", () => {
    const a = new ApiError("AccessDeniedException", "not authorized to perform: ssm:ListResourceComplianceSummaries");
    const b = new ApiError("AccessDeniedException", "not authorized to perform: ssm:ListTagsForResource");
    expect(mergeErrors([["Compliance", null], ["Tags", null]])).toBeNull();
    expect(mergeErrors([["Compliance", a], ["Tags", null]])).toBe(a);
    const m = mergeErrors([["Compliance", a], ["Tags", b]]);
    expect(m.code).toBe("AccessDeniedException");
    expect(m.message).toContain("ListResourceComplianceSummaries");
    expect(m.message).toContain("ListTagsForResource");
    expect(m.next).toBe(a.next);
  });
});

describe("node page", () => {
  it("lists a node's facts, leaving out what it lacks", () => {
    const facts = nodeFacts({
      InstanceId: "mi-0123456789abcdef0",
      PingStatus: "Online",
      PlatformName: "Debian GNU/Linux",
      PlatformVersion: "12",
      AgentVersion: "3.3.0",
      RegistrationDate: new Date("2026-01-02T03:04:05Z"),
    });
    const m = Object.fromEntries(facts);
    expect(m["Node ID"]).toBe("mi-0123456789abcdef0");
    expect(m.Platform).toBe("Debian GNU/Linux 12");
    expect(m["Agent version"]).toBe("3.3.0");
    expect(m["Registration date"]).toBe("2026-01-02 03:04:05 UTC");
    expect(m).not.toHaveProperty("IP address");
    expect(nodeFacts(null)).toEqual([]);
  });

  it("shows zero counts of a patch state", () => {
    const m = Object.fromEntries(patchFacts({ BaselineId: "pb-1", Operation: "Scan", InstalledCount: 4, MissingCount: 0 }));
    expect(m.Missing).toBe("0");
    expect(m.Installed).toBe("4");
    expect(m.Baseline).toBe("pb-1");
  });

  it("picks inventory columns the entries have", () => {
    const entries = [{ Name: "bash", Version: "5.2", Extra: "x" }, { Name: "curl", Publisher: "Debian" }];
    expect(inventoryColumns(entries, ["Name", "Version", "Publisher", "Architecture"])).toEqual(["Name", "Version", "Publisher"]);
    expect(inventoryColumns([{ A: "1", B: "2" }], ["Name"])).toEqual(["A", "B"]);
    expect(inventoryColumns([], ["Name"])).toEqual([]);
  });
});
