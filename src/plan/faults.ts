/**
 * Fault injection for tests (@internal). The executor and the builders call
 * {@link faultAt} at named points of an apply (`nft`, `step:<i>:<j>`,
 * `verify`, `health-check`, `xdp-maps`, `xdp-load`, `xdp-attach`, `xdp-pin`,
 * `dpi-queues`, ...); a test installs a hook with {@link setFaultHook} and
 * makes the k-th point fail. With no hook installed a call is one comparison.
 * @internal
 * @module
 */

/** Decides, for a named point, whether the operation there must fail. @internal */
export type FaultHook = (point: string) => boolean;

let hook: FaultHook | undefined;

/**
 * Install (or, with `undefined`, remove) the fault hook. Test-only.
 * @internal
 */
export function setFaultHook(h: FaultHook | undefined): void {
  hook = h;
}

/**
 * Whether the operation at `point` must fail now (always false without a hook).
 * @internal
 */
export function faultAt(point: string): boolean {
  return hook !== undefined && hook(point);
}

/**
 * A hook that records every point it is asked about and fails the `failAt`-th
 * (0-based; -1 = never). `points` lists the points seen, in order. Test-only.
 * @internal
 */
export function failNth(failAt: number): { hook: FaultHook; points: string[]; injected: string | undefined } {
  const state: { hook: FaultHook; points: string[]; injected: string | undefined } = {
    points: [],
    injected: undefined,
    hook: (point) => {
      const i = state.points.length;
      state.points.push(point);
      if (i === failAt) {
        state.injected = point;
        return true;
      }
      return false;
    },
  };
  return state;
}
