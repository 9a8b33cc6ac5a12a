/**
 * The command line's help, as the issue asks: `otlp2parquet --help` lists every command on one line,
 * every command (and subcommand) has `--help` with examples, and docs/cli.md has a section for each.
 * Commands added later are covered without changing this test.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import type { Command } from "commander";
import { buildCli, runCli } from "../src/cli/program.ts";
import { registerServe } from "../src/cli/serve_command.ts";

async function help(args: string[]): Promise<{ code: number; out: string }> {
  let out = "";
  const io = { stdout: (t: string) => void (out += t), stderr: (t: string) => void (out += t) };
  const code = await runCli([...args, "--help"], { extra: registerServe, io });
  return { code, out };
}

/** [path, command] for every command and subcommand but commander's own `help`. */
function commands(): [string[], Command][] {
  const program = buildCli(registerServe, { run: { io: { stdout() {}, stderr() {} }, exitCode: 0 } });
  const out: [string[], Command][] = [];
  const walk = (cmd: Command, path: string[]) => {
    for (const sub of cmd.commands) {
      const p = [...path, sub.name()];
      out.push([p, sub]);
      walk(sub, p);
    }
  };
  walk(program, []);
  return out;
}

Deno.test("otlp2parquet --help lists every command on one line", async () => {
  const { code, out } = await help([]);
  assert.equal(code, 0);
  const listing = out.split("Commands:\n")[1].split("\n\n")[0].split("\n");
  const top = commands().filter(([p]) => p.length === 1).map(([p]) => p[0]);
  assert.ok(top.length >= 6, top.join(" "));
  for (const name of top) {
    const line = listing.findIndex((l) => new RegExp(`^ {2}${name} `).test(l));
    assert.ok(line >= 0, `${name} is not listed`);
    // The next line starts another command, not a wrapped description.
    assert.ok(line + 1 >= listing.length || /^ {2}\S/.test(listing[line + 1]), `${name}'s line wraps`);
  }
});

Deno.test("every command's --help has examples, and docs/cli.md a section", async () => {
  const doc = readFileSync(new URL("../docs/cli.md", import.meta.url), "utf8");
  for (const [path, cmd] of commands()) {
    if (cmd.commands.length) continue; // `schema`: its subcommands carry the examples
    const { code, out } = await help(path);
    assert.equal(code, 0, path.join(" "));
    assert.match(out, /\nExamples:\n {2}\S/, `${path.join(" ")} --help has no examples`);
    assert.match(doc, new RegExp(`^## ${path[0]}$`, "m"), `docs/cli.md has no "## ${path[0]}"`);
  }
});
