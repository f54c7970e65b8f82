/** The translation run of this example is the library's: these names are what the CLI and the study call it. */
import type { TranslationConfig, TranslationRun } from 'nmgrad';

export type RunConfig = TranslationConfig;
export type Run = TranslationRun;
