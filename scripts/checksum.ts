/**
 * Writes `<file>.sha256` next to a build output, in `sha256sum` format (`<hex>  <name>`), so that
 * scripts/install.sh (and anyone with sha256sum or shasum) can verify the binary before use.
 * Usage: bun scripts/checksum.ts dist/dionysus
 */
import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { basename } from "node:path";

const file = process.argv[2];
if (!file) {
  process.stderr.write("usage: bun scripts/checksum.ts FILE\n");
  process.exit(2);
}
const hex = createHash("sha256").update(readFileSync(file)).digest("hex");
writeFileSync(`${file}.sha256`, `${hex}  ${basename(file)}\n`);
process.stdout.write(`${file}.sha256: ${hex}\n`);
