/**
 * nmgrad inside a Node tool, in a few lines: load an exported N:M model, translate the lines of
 * stdin, print the translations and (given a reference file) BLEU and chrF.
 *
 *   npm run translate -- export --run runs/pmd-1-8 --out model.safetensors
 *   node dist/examples/embed/main.js model.safetensors ref.de < src.en
 */
import { readFileSync } from 'node:fs';
import { loadCompressedTransformer, translate } from 'nmgrad';
import { BpeTokenizer, corpusBleu, corpusChrf, type BpeJSON } from 'nmgrad/text';

const [modelPath, refPath] = process.argv.slice(2);
if (!modelPath) {
  console.error('usage: node main.js MODEL.safetensors [REFERENCE] < SOURCE');
  process.exit(2);
}

const lines = (text: string): string[] => (text === '' ? [] : text.split('\n').slice(0, text.endsWith('\n') ? -1 : undefined));

// The exported file carries the model config and the tokenizer in its metadata.
const { model, metadata } = loadCompressedTransformer(modelPath);
const tokenizer = BpeTokenizer.fromJSON(JSON.parse(metadata.tokenizer!) as BpeJSON);

const sources = lines(readFileSync(0, 'utf8'));
const hyps = translate(model, tokenizer, sources, { beam: Number(process.env.BEAM ?? 1) });
process.stdout.write(hyps.map((h) => `${h}\n`).join(''));

if (refPath) {
  const refs = lines(readFileSync(refPath, 'utf8'));
  const bleu = corpusBleu(hyps, [refs]);
  console.error(`BLEU ${bleu.score.toFixed(2)}  chrF2 ${corpusChrf(hyps, refs).toFixed(2)}  (${hyps.length} lines, sacreBLEU 13a, cased)`);
}
