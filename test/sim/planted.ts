/**
 * Planted-bug hunts: run seeds with one bug planted in the core until a checker fails. Proves the
 * checkers catch what they claim to (a simulator that never fails proves nothing).
 */
import type { CheckerName } from './failure.js';
import type { PlantedBugName } from './profile.js';
import { runSeed, type SimOptions } from './simulation.js';

export interface HuntResult {
  readonly bug: PlantedBugName;
  /**
   * The first seed that fails with the bug and passes without it (the control run proves the
   * failure is the bug's), or null when none did within the bound.
   */
  readonly caught: { readonly seed: number; readonly checker: CheckerName; readonly message: string } | null;
  readonly seedsRun: number;
  /** Seeds that failed with the bug but also without it: not the bug's doing (reported apart). */
  readonly unattributed: ReadonlyArray<{ readonly seed: number; readonly checker: CheckerName }>;
}

export const HUNT_SEEDS_MAX_DEFAULT = 3_000;

export async function huntPlantedBug(
  bug: PlantedBugName,
  options: { first?: number; seedsMax?: number; sim?: Omit<SimOptions, 'plantedBug'> } = {},
): Promise<HuntResult> {
  const first = options.first ?? 1;
  const seedsMax = options.seedsMax ?? HUNT_SEEDS_MAX_DEFAULT;
  const unattributed: Array<{ seed: number; checker: CheckerName }> = [];
  for (let i = 0; i < seedsMax; i++) {
    const seed = first + i;
    const r = await runSeed(seed, { ...options.sim, plantedBug: bug });
    if (r.failure === null) continue;
    // The control: the same scenario (the bug's biased profile) with the bug switched off.
    const control = await runSeed(seed, { ...options.sim, plantedBug: bug, plantedBugOff: true });
    if (control.failure !== null) {
      unattributed.push({ seed, checker: r.failure.checker });
      continue;
    }
    const caught = { seed, checker: r.failure.checker, message: r.failure.message };
    return { bug, caught, seedsRun: i + 1, unattributed };
  }
  return { bug, caught: null, seedsRun: seedsMax, unattributed };
}
