/**
 * The public API of nmgrad as the TypeScript checker sees it: every export of the package's
 * entry points (`nmgrad`, `nmgrad/text`, `nmgrad/train`), re-exports followed to their
 * declarations, with each one's documentation comment. `npm run docs` renders it as Markdown;
 * test/docs.test.ts fails when an export has no doc comment.
 *
 * TypeScript 7 drops the classic in-process compiler API (and TypeDoc, which needs it, supports
 * TypeScript ≤ 6), so this talks to the compiler through `typescript/unstable/sync`, the API
 * that TypeScript 7 ships: it starts the native compiler and answers checker queries over a pipe.
 */
import { readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { API, SymbolFlags, type Checker, type Project } from 'typescript/unstable/sync';

/** The package's entry points: subpath → source file. */
export const ENTRY_POINTS: readonly { subpath: string; file: string }[] = [
  { subpath: 'nmgrad', file: 'src/index.ts' },
  { subpath: 'nmgrad/train', file: 'src/train/index.ts' },
  { subpath: 'nmgrad/text', file: 'src/text/index.ts' },
];

export type ExportKind = 'class' | 'function' | 'interface' | 'type' | 'const' | 'enum' | 'other';

/** One documented (or undocumented) name: a public export or a public member of a class. */
export interface ApiItem {
  name: string;
  kind: ExportKind | 'property' | 'method' | 'accessor' | 'constructor';
  /** The documentation comment, '' when there is none. */
  doc: string;
  /** The declaration's first line(s) up to its body, as written in the source. */
  signature: string;
  /** Source file relative to the project root, and 1-based line. */
  file: string;
  line: number;
}

/** One export of an entry point, with the public members of a class or interface. */
export interface ApiExport extends ApiItem {
  members: ApiItem[];
}

export interface ApiEntry {
  subpath: string;
  file: string;
  exports: ApiExport[];
}

function kindOf(flags: number): ExportKind {
  if (flags & SymbolFlags.Class) return 'class';
  if (flags & SymbolFlags.Function) return 'function';
  if (flags & SymbolFlags.Interface) return 'interface';
  if (flags & SymbolFlags.TypeAlias) return 'type';
  if (flags & SymbolFlags.Enum) return 'enum';
  if (flags & SymbolFlags.Variable) return 'const';
  return 'other';
}

function memberKind(flags: number): ApiItem['kind'] {
  if (flags & SymbolFlags.Method) return 'method';
  if (flags & SymbolFlags.Accessor) return 'accessor';
  if (flags & SymbolFlags.Constructor) return 'constructor';
  return 'property';
}

/** Source text of declarations: the first line, up to a body or a semicolon. */
class Sources {
  private readonly texts = new Map<string, string>();
  constructor(private readonly root: string) {}

  locate(path: string, pos: number): { file: string; line: number; signature: string } {
    let text = this.texts.get(path);
    if (text === undefined) {
      text = readFileSync(path, 'utf8');
      this.texts.set(path, text);
    }
    // A node's pos includes its leading trivia (the doc comment): skip comments and blanks.
    let at = pos;
    for (;;) {
      while (at < text.length && /\s/.test(text[at]!)) at++;
      if (text.startsWith('/*', at)) at = text.indexOf('*/', at) + 2;
      else if (text.startsWith('//', at)) at = text.indexOf('\n', at);
      else break;
    }
    const line = text.slice(0, at).split('\n').length;
    let signature = text.slice(at, text.indexOf('\n', at) < 0 ? text.length : text.indexOf('\n', at)).trim();
    signature = signature.replace(/\s*\{\s*$/, '').replace(/;$/, '');
    return { file: relative(this.root, path), line, signature };
  }
}

function isPublicMember(name: string, signature: string): boolean {
  return !name.startsWith('#') && !/^(private|protected)\b/.test(signature) && (name === '__constructor' || !name.startsWith('__'));
}

function describe(checker: Checker, project: Project, sources: Sources, name: string, symbol: ReturnType<Checker['getAliasedSymbol']>): ApiItem {
  const decl = symbol.declarations[0];
  const node = decl?.resolve(project);
  const where = decl && node ? sources.locate(decl.path, node.pos) : { file: '', line: 0, signature: '' };
  return { name, kind: kindOf(symbol.flags), doc: checker.getDocumentationCommentOfSymbol(symbol).trim(), ...where };
}

/**
 * Walks the entry points of the project at `root` (default: the working directory). Starts the
 * TypeScript 7 compiler for the duration of the call; throws when the project does not load.
 */
export function publicApi(root = process.cwd()): ApiEntry[] {
  const api = new API({ cwd: root });
  try {
    const snapshot = api.updateSnapshot({ openProjects: [join(root, 'tsconfig.json')] });
    const project = snapshot.getProjects()[0];
    if (!project) throw new Error(`no TypeScript project at ${join(root, 'tsconfig.json')}`);
    const { program, checker } = project;
    const sources = new Sources(root);
    return ENTRY_POINTS.map(({ subpath, file }) => {
      const sf = program.getSourceFile(join(root, file));
      const moduleSymbol = sf && checker.getSymbolAtLocation(sf);
      if (!moduleSymbol) throw new Error(`${file} is not a module of the project`);
      const exports = checker.getExportsOfModule(moduleSymbol).map((exported): ApiExport => {
        const target = exported.flags & SymbolFlags.Alias ? checker.getAliasedSymbol(exported) : exported;
        const item = describe(checker, project, sources, exported.name, target);
        const members: ApiItem[] = [];
        if (item.kind === 'class' || item.kind === 'interface') {
          const statics = item.kind === 'class' ? [...target.getExports().values()].filter((s) => s.name !== 'prototype') : [];
          for (const member of [...target.getMembers().values(), ...statics]) {
            const m = describe(checker, project, sources, member.name, member);
            if (m.file && isPublicMember(member.name, m.signature)) members.push({ ...m, name: member.name === '__constructor' ? 'constructor' : member.name, kind: memberKind(member.flags) });
          }
        }
        return { ...item, members };
      });
      exports.sort((a, b) => a.file.localeCompare(b.file) || a.line - b.line);
      return { subpath, file, exports };
    });
  } finally {
    api.close();
  }
}
