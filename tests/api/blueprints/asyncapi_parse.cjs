// Parses an AsyncAPI document read from stdin with the official parser (@asyncapi/parser,
// installed by scripts/test into .tools/asyncapi), prints every diagnostic as one JSON
// line, and exits 1 when the parser found an error or made no document.
// Run: NODE_PATH=.tools/asyncapi/node_modules node asyncapi_parse.cjs < document.json
"use strict";
const { Parser, DiagnosticSeverity } = require("@asyncapi/parser");

async function main() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  const { document, diagnostics } = await new Parser().parse(Buffer.concat(chunks).toString());
  for (const diagnostic of diagnostics) {
    console.log(
      JSON.stringify({
        severity: DiagnosticSeverity[diagnostic.severity],
        code: diagnostic.code,
        message: diagnostic.message,
        path: diagnostic.path.join("."),
      }),
    );
  }
  const failed = diagnostics.some((d) => d.severity === DiagnosticSeverity.Error);
  if (failed || document === undefined) process.exit(1);
  const operations = document.operations().all().map((operation) => operation.id());
  console.log(JSON.stringify({ version: document.version(), operations }));
}

main().catch((error) => {
  console.error(error);
  process.exit(2);
});
