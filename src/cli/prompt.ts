/** Asking before something that cannot be undone: `--yes` skips it; without a terminal and without
 * `--yes` the command refuses (a script must say so explicitly). */
import { DionysusError } from "../core/errors.ts";

export async function confirm(question: string, yes: boolean | undefined): Promise<void> {
  if (yes) return;
  if (!process.stdin.isTTY)
    throw new DionysusError("invalid_input", `${question} Add --yes to confirm (no terminal to ask on).`);
  process.stderr.write(`${question} Type yes to go on: `);
  const answer = await new Promise<string>((resolve) => {
    process.stdin.setEncoding("utf8");
    process.stdin.once("data", (d) => {
      process.stdin.pause();
      resolve(String(d).trim());
    });
    process.stdin.resume();
  });
  if (answer.toLowerCase() !== "yes")
    throw new DionysusError("invalid_input", "cancelled; nothing was changed");
}
