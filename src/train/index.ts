// The training entry point of nmgrad (`nmgrad/train`; also re-exported by `nmgrad`).
export { fit, stopOnSignals, loadTrainState, checkpointStep, type FitOptions, type StopSignal, type FitResult, type TrainEvent, type TrainState, type EvaluateOptions } from './trainer.js';
export {
  CHECKPOINT_FILE, CONFIG_FILE, METRICS_FILE, SUMMARY_FILE, SNAPSHOT_DIR, BEST_DIR, AVERAGED_DIR, RUN_FILES, existingRunFiles, checkRegularTarget,
  ensureFolder, checkFreshRunDir, prepareFreshRunDir, lockRunFolder, cleanRunFolder, readRunConfig, appendMetrics, readMetrics, cutMetricsBack,
  listSnapshots, pruneSnapshots, dropSnapshotsAfter,
} from './run-folder.js';
export { averageWeights, averageRun } from './average.js';
export { makeBatches, collate, type Batch, type Example } from './batches.js';
export {
  buildTranslationRun, saveTranslationRun, readTokenizer, loadTranslationRun, exportTranslationRun, loadTranslator, TOKENIZER_FILE,
  type TranslationConfig, type TranslationRun,
} from './translation.js';
export { outputPathProblem, checkOutputPath } from './paths.js';
