// Every option a user can pass carries its documentation to the editor (issue #15, item 2): each
// field of each exported *Options type, nested objects included, has a JSDoc description, and
// each optional field states its default (an @default tag or the word "default" in its text).
// The generated interfaces (lib/option-types.ts) match the zod schemas they come from, and the
// API reference builds.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));

interface FieldProblem { path: string; problem: string }

/** Walks the exported option types of lib/index.ts with the TypeScript checker. */
function optionFields(): { types: string[]; fields: number; problems: FieldProblem[] } {
  const config = ts.getParsedCommandLineOfConfigFile(`${root}tsconfig.json`, {}, { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => {} })!;
  const program = ts.createProgram([`${root}lib/index.ts`], config.options);
  const checker = program.getTypeChecker();
  const index = checker.getSymbolAtLocation(program.getSourceFile(`${root}lib/index.ts`)!)!;
  const types: string[] = [], problems: FieldProblem[] = [];
  let fields = 0;
  const visit = (type: ts.Type, path: string, depth: number): void => {
    for (const prop of checker.getPropertiesOfType(type)) {
      const decl = prop.valueDeclaration ?? prop.declarations?.[0];
      if (!decl || decl.getSourceFile().fileName.includes('node_modules')) continue;
      fields++;
      const where = `${path}.${prop.name}`;
      const text = ts.displayPartsToString(prop.getDocumentationComment(checker)).trim();
      const tags = prop.getJsDocTags(checker).map((t) => t.name);
      if (!text) problems.push({ path: where, problem: 'no description' });
      else if ((prop.flags & ts.SymbolFlags.Optional) && !tags.includes('default') && !/default/i.test(text)) problems.push({ path: where, problem: 'optional, but no default stated' });
      // Nested option objects (earlyStopping, columns, out): their fields are options too.
      const fieldType = checker.getNonNullableType(checker.getTypeOfSymbol(prop));
      const objects = fieldType.isUnion() ? fieldType.types : [fieldType];
      for (const t of objects) {
        const anonymous = (t.flags & ts.TypeFlags.Object) && ((t as ts.ObjectType).objectFlags & ts.ObjectFlags.Anonymous) && !t.getCallSignatures().length;
        if (anonymous && depth < 4) visit(t, where, depth + 1);
        const element = checker.isArrayType(t) ? checker.getTypeArguments(t as ts.TypeReference)[0] : undefined;
        if (element && (element.flags & ts.TypeFlags.Object) && ((element as ts.ObjectType).objectFlags & ts.ObjectFlags.Anonymous)) visit(element, `${where}[]`, depth + 1);
      }
    }
  };
  for (const exported of checker.getExportsOfModule(index)) {
    if (!/Options$/.test(exported.name)) continue;
    const symbol = exported.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(exported) : exported;
    if (!(symbol.flags & (ts.SymbolFlags.Interface | ts.SymbolFlags.TypeAlias))) continue;
    types.push(exported.name);
    visit(checker.getDeclaredTypeOfSymbol(symbol), exported.name, 0);
  }
  return { types, fields, problems };
}

describe('option documentation', () => {
  it('documents every field of every exported option type, with its default', () => {
    const { types, fields, problems } = optionFields();
    console.log(`${types.length} exported option types, ${fields} fields: ${types.join(', ')}`);
    // The walk must see the options users pass most, or it proves nothing.
    expect(types).toEqual(expect.arrayContaining(['TrainerOptions', 'DatasetOptions', 'LoadOptions', 'GenerateOptions', 'LoraOptions', 'ClassifierOptions', 'SearchOptions']));
    expect(fields).toBeGreaterThan(120);
    expect(problems).toEqual([]);
  }, 60_000);

  it('keeps lib/option-types.ts and schema/job.schema.json in step with the schemas', () => {
    const run = spawnSync(process.execPath, ['scripts/option-types.mjs', '--check'], { cwd: root, encoding: 'utf8' });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
  }, 60_000);

  it('builds the API reference (npm run docs) without warnings', () => {
    const run = spawnSync(process.execPath, ['node_modules/typedoc/bin/typedoc', '--emit', 'none', '--treatWarningsAsErrors'], { cwd: root, encoding: 'utf8' });
    expect(run.stdout + run.stderr).not.toMatch(/\[(error|warning)\]/);
    expect(run.status).toBe(0);
  }, 120_000);
});
