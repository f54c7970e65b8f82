/**
 * Study presets: the flags of a whole study under one name (`compare --study NAME`); any flag
 * given on the command line overrides the preset's.
 *
 * Schedule split 10/30/60 (dense warm-up / decay window / hard fine-tune, % of the steps): the
 * paper's code decays over 16 intervals that begin after a dense warm-up and end well before
 * training does, so the decay window is a minority of training. At 2000 steps this is 200
 * dense steps, a 600-step window (PMD staircase: 16 intervals of Δ = 37 steps, α falls by 1/16
 * each; SSD stepwise: log2(M/N) + 1 equal frames) and 1200 fine-tune steps with a hard mask.
 * SR-STE and unstructured train sparse from step 0, as in their papers; the split applies to
 * the decay recipes (pmd, ssd, gradual) that set neither dense nor finetune themselves.
 */
export const PAPER_SCHEDULE = '10/30/60';

export interface StudyPreset {
  description: string;
  flags: Record<string, string>;
}

const M30K = { data: 'multi30k', preset: 'small', sparsify: 'ffn', steps: '2000', recipes: 'srste;pmd;ssd;unstructured', seeds: '1,2,3', schedule: PAPER_SCHEDULE };

export const STUDY_PRESETS: Record<string, StudyPreset> = {
  m30k: {
    description: 'Multi30k En→De, small preset, FFN layers, 2000 steps, seeds 1-3: dense + SR-STE, PMD (staircase), SSD (stepwise), unstructured at 2:4, 1:8, 1:32 (39 runs)',
    flags: { ...M30K, nm: '2:4,1:8,1:32', out: 'runs/study-m30k' },
  },
  'm30k-wide': {
    description: 'as m30k, with 1:16 and 1:64 added (63 runs)',
    flags: { ...M30K, nm: '2:4,1:8,1:16,1:32,1:64', out: 'runs/study-m30k-wide' },
  },
  tiny: {
    description: 'built-in corpus, tiny preset, 50 steps, seeds 1-2: dense + SR-STE, PMD, SSD at 1:8, scored on 200 val sentences (8 runs; a smoke test of the machinery, not a result)',
    flags: { data: 'builtin', preset: 'tiny', sparsify: 'ffn', steps: '50', recipes: 'srste;pmd;ssd', nm: '1:8', seeds: '1,2', schedule: PAPER_SCHEDULE, 'eval-sentences': '200', out: 'runs/study-tiny' },
  },
};
