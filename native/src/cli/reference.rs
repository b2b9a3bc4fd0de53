//! The CLI reference, rendered from the clap definitions so that the
//! documentation cannot drift from the parser: `docs/CLI.md` holds
//! [`markdown`], the README's command table [`summary_table`]; the test
//! `native/tests/cli_reference.rs` compares both with the files
//! (`CAIRN_BLESS=1` rewrites them).

use clap::CommandFactory;

use super::Cli;

/// Every visible command path (`["ask"]`, `["train", "lora"]`) with its
/// clap command, in declaration order.
fn commands(
    cmd: &clap::Command,
    path: &mut Vec<String>,
    out: &mut Vec<(Vec<String>, clap::Command)>,
) {
    for sub in cmd.get_subcommands() {
        if sub.is_hide_set() || sub.get_name() == "help" {
            continue;
        }
        path.push(sub.get_name().to_string());
        if sub.has_subcommands() {
            commands(sub, path, out);
        } else {
            out.push((path.clone(), sub.clone()));
        }
        path.pop();
    }
}

fn all() -> Vec<(Vec<String>, clap::Command)> {
    let mut root = Cli::command();
    root.build();
    let mut out = Vec::new();
    commands(&root, &mut Vec::new(), &mut out);
    out
}

/// The full reference: each command's long help, as `cairn <cmd> --help`
/// prints it.
pub fn markdown() -> String {
    let mut s = String::from(
        "# cairn command-line reference\n\n\
         Generated from the clap definitions in `native/src/cli/` (the test\n\
         `native/tests/cli_reference.rs` fails when this file is stale;\n\
         `CAIRN_BLESS=1 cargo test -p cairn --test cli_reference` rewrites it).\n\
         Every command also takes `--cache-dir DIR` (default `$CAIRN_CACHE`, else\n\
         `~/.cache/cairn`). Exit codes: 0 success, 1 runtime error, 2 usage error.\n",
    );
    for (path, mut cmd) in all() {
        let help = cmd.render_long_help().to_string();
        s.push_str(&format!(
            "\n## `cairn {}`\n\n```text\n{}\n```\n",
            path.join(" "),
            help.trim_end()
        ));
    }
    s
}

/// One row per command: its name and one-line description (the README's table).
pub fn summary_table() -> String {
    let mut s = String::from("| command | what it does |\n|---|---|\n");
    for (path, cmd) in all() {
        let about = cmd
            .get_about()
            .map(|a| a.to_string())
            .unwrap_or_default()
            .replace('\n', " ")
            .replace('|', "\\|");
        s.push_str(&format!("| `cairn {}` | {} |\n", path.join(" "), about));
    }
    s
}
