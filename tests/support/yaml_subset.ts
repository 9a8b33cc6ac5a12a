/**
 * A strict reader for the subset of YAML that `otlp2parquet connect otel-collector` prints: block
 * mappings by indentation, comments, plain and quoted scalars, and flow sequences of plain scalars. The
 * repository has no YAML library; this one refuses everything outside the subset (tabs, block sequences,
 * anchors, odd indentation, duplicate keys) instead of guessing, so a test that parses with it fails on
 * output a real YAML parser might read differently. Where PyYAML is installed, the tests parse with it too.
 */

/** A parsed value: a mapping, a list of scalars, or a scalar (strings, numbers, booleans as YAML 1.2 core). */
export type YamlValue = string | number | boolean | null | YamlValue[] | { [key: string]: YamlValue };

interface Line {
  no: number;
  indent: number;
  text: string;
}

/** Strips a comment (a `#` at the start or after a blank, outside quotes). */
function stripComment(text: string): string {
  let quote: string | undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quote) {
      if (c === "\\" && quote === '"') i++;
      else if (c === quote) quote = undefined;
    } else if (c === '"' || c === "'") quote = c;
    else if (c === "#" && (i === 0 || text[i - 1] === " ")) return text.slice(0, i).trimEnd();
  }
  if (quote) throw new SyntaxError(`unterminated ${quote}-quoted string`);
  return text.trimEnd();
}

function scalar(text: string, no: number): YamlValue {
  if (text.startsWith('"')) {
    if (!text.endsWith('"') || text.length < 2) throw new SyntaxError(`line ${no}: bad double-quoted string`);
    return JSON.parse(text) as string;
  }
  if (text.startsWith("'")) {
    if (!text.endsWith("'") || text.length < 2) throw new SyntaxError(`line ${no}: bad single-quoted string`);
    return text.slice(1, -1).replaceAll("''", "'");
  }
  if (text.startsWith("[")) {
    if (!text.endsWith("]")) throw new SyntaxError(`line ${no}: unterminated flow sequence`);
    const inner = text.slice(1, -1).trim();
    return inner === "" ? [] : inner.split(",").map((item) => scalar(item.trim(), no));
  }
  if (/^[{&*!|>%@`-]/.test(text) && !/^-?\d/.test(text)) {
    throw new SyntaxError(`line ${no}: ${JSON.stringify(text)} is outside the supported subset`);
  }
  if (text === "true" || text === "false") return text === "true";
  if (text === "null" || text === "~") return null;
  if (/^-?\d+$/.test(text)) return Number(text);
  if (/^-?\d+\.\d+$/.test(text)) return Number(text);
  if (/: |\s#/.test(text)) {
    throw new SyntaxError(`line ${no}: ambiguous plain scalar ${JSON.stringify(text)}`);
  }
  return text;
}

/** Parses the document; throws SyntaxError naming the line on anything outside the subset. */
export function parseYamlSubset(source: string): YamlValue {
  const lines: Line[] = [];
  source.split("\n").forEach((raw, i) => {
    if (raw.includes("\t")) throw new SyntaxError(`line ${i + 1}: tab`);
    const text = stripComment(raw);
    if (text.trim() === "") return;
    const indent = text.length - text.trimStart().length;
    lines.push({ no: i + 1, indent, text: text.trim() });
  });
  let pos = 0;
  const block = (indent: number): { [key: string]: YamlValue } => {
    const out: { [key: string]: YamlValue } = {};
    while (pos < lines.length && lines[pos].indent >= indent) {
      const line = lines[pos];
      if (line.indent !== indent) throw new SyntaxError(`line ${line.no}: unexpected indentation`);
      if (line.text.startsWith("- ")) {
        throw new SyntaxError(`line ${line.no}: block sequences are not supported`);
      }
      const m = /^([A-Za-z0-9_./-]+|"[^"]*"):(?: (.*))?$/.exec(line.text);
      if (!m) {
        throw new SyntaxError(`line ${line.no}: expected "key: value", got ${JSON.stringify(line.text)}`);
      }
      const key = m[1].startsWith('"') ? JSON.parse(m[1]) as string : m[1];
      if (key in out) throw new SyntaxError(`line ${line.no}: duplicate key ${key}`);
      pos++;
      if (m[2] !== undefined && m[2] !== "") out[key] = scalar(m[2], line.no);
      else if (pos < lines.length && lines[pos].indent > indent) out[key] = block(lines[pos].indent);
      else out[key] = null;
    }
    return out;
  };
  const doc = block(0);
  if (pos !== lines.length) throw new SyntaxError(`line ${lines[pos].no}: unexpected indentation`);
  return doc;
}
