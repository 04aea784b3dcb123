import { describe, expect, it } from "vitest";
import { KernelError } from "../pseudokernel/index.js";
import { Admission } from "./admission.js";

describe("Admission", () => {
  it("admits requests until the node's CPU or memory is taken, then refuses with EPLACE", () => {
    const admission = new Admission({ cpu: 2, mem: 1000 });
    const a = admission.admit({ cpu: 1.5, mem: 100 }, "n1");
    admission.admit({ cpu: 0.5, mem: 0 }, "n1");
    expect(admission.reserved).toEqual({ cpu: 2, mem: 100 });
    let error: unknown;
    try {
      admission.admit({ cpu: 0.1, mem: 0 }, "n1");
    } catch (e) {
      error = e;
    }
    expect((error as KernelError).code).toBe("EPLACE");
    expect(() => admission.admit({ cpu: 0, mem: 901 }, "n1")).toThrow(KernelError);
    a();
    a(); // releasing twice gives back once
    expect(admission.reserved).toEqual({ cpu: 0.5, mem: 0 });
  });

  it("requests without resources are always admitted and hold nothing", () => {
    const admission = new Admission({ cpu: 0, mem: 0 });
    admission.admit(undefined, "n1")();
    admission.admit({ cpu: 0, mem: 0 }, "n1");
    expect(admission.reserved).toEqual({ cpu: 0, mem: 0 });
  });

  it("fractional requests add up exactly to the allocatable amount", () => {
    const admission = new Admission({ cpu: 0.3, mem: 0 });
    admission.admit({ cpu: 0.1, mem: 0 }, "n1");
    admission.admit({ cpu: 0.2, mem: 0 }, "n1");
    expect(() => admission.admit({ cpu: 0.001, mem: 0 }, "n1")).toThrow(/resources/);
  });
});
