/**
 * `dionysus completion bash|zsh|fish`: a shell completion script made from the commander program
 * itself (every command, subcommand and long option), so it never drifts from the CLI. zsh loads
 * the bash one through `bashcompinit`.
 */
import type { Command } from "commander";
import { DionysusError } from "../../core/errors.ts";
import { action } from "../output.ts";

interface Node {
  /** Words after `dionysus`, e.g. `vps key`. */
  path: string;
  subcommands: { name: string; description: string }[];
  options: { flag: string; description: string }[];
}

function walk(cmd: Command, prefix: string[], out: Node[]): void {
  const path = prefix.join(" ");
  const subs = cmd.commands.filter((c) => c.name() !== "help");
  out.push({
    path,
    subcommands: subs.map((c) => ({ name: c.name(), description: c.description() })),
    options: [
      ...cmd.options.map((o) => ({ flag: o.long ?? "", description: o.description })),
      { flag: "--help", description: "show help" },
    ].filter((o) => o.flag),
  });
  for (const c of subs) walk(c, [...prefix, c.name()], out);
}

const q = (s: string) => `'${s.replaceAll("'", "'\\''")}'`;

function bash(nodes: Node[]): string {
  const cases = nodes
    .map((n) => {
      const words = [...n.subcommands.map((s) => s.name), ...n.options.map((o) => o.flag)].join(" ");
      return `    ${q(n.path)}) words=${q(words)} ;;`;
    })
    .join("\n");
  return `# dionysus bash completion: eval "$(dionysus completion bash)"
_dionysus() {
  local cur path="" w i words
  cur="\${COMP_WORDS[COMP_CWORD]}"
  for ((i = 1; i < COMP_CWORD; i++)); do
    w="\${COMP_WORDS[i]}"
    [[ "$w" == -* ]] && continue
    case "\${path:+$path }$w" in
${nodes
  .filter((n) => n.path)
  .map((n) => `      ${q(n.path)}) path=${q(n.path)} ;;`)
  .join("\n")}
    esac
  done
  case "$path" in
${cases}
  esac
  COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
complete -o default -F _dionysus dionysus
`;
}

function fish(nodes: Node[]): string {
  const lines = ["# dionysus fish completion: dionysus completion fish | source", "complete -c dionysus -f"];
  for (const n of nodes) {
    const words = n.path ? n.path.split(" ") : [];
    const last = words.at(-1);
    const childNames = n.subcommands.map((s) => s.name).join(" ");
    const cond = last
      ? `__fish_seen_subcommand_from ${last}${childNames ? `; and not __fish_seen_subcommand_from ${childNames}` : ""}`
      : "__fish_use_subcommand";
    for (const s of n.subcommands)
      lines.push(`complete -c dionysus -n ${q(cond)} -a ${q(s.name)} -d ${q(s.description)}`);
    for (const o of n.options)
      lines.push(
        `complete -c dionysus -n ${q(last ? `__fish_seen_subcommand_from ${last}` : "true")} -l ${o.flag.slice(2)} -d ${q(o.description)}`,
      );
  }
  return `${lines.join("\n")}\n`;
}

export function registerCompletion(program: Command): void {
  program
    .command("completion")
    .description("print a shell completion script: bash, zsh or fish")
    .argument("<shell>", "bash, zsh or fish")
    .action(
      action(async (shell: string) => {
        const nodes: Node[] = [];
        walk(program, [], nodes);
        if (shell === "bash") process.stdout.write(bash(nodes));
        else if (shell === "zsh")
          process.stdout.write(`# dionysus zsh completion: eval "$(dionysus completion zsh)"
autoload -U +X bashcompinit && bashcompinit
${bash(nodes)}`);
        else if (shell === "fish") process.stdout.write(fish(nodes));
        else throw new DionysusError("invalid_input", "completion: the shell must be bash, zsh or fish");
      }),
    );
}
