//! The CLI reference in `docs/CLI.md` and the README's command table are
//! rendered from clap; this test fails when either is stale.
//! `CAIRN_BLESS=1 cargo test -p cairn --test cli_reference` rewrites them.

use std::path::PathBuf;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

const START: &str = "<!-- cli-table:start (generated from clap; see docs/CLI.md) -->\n";
const END: &str = "<!-- cli-table:end -->";

#[test]
fn docs_cli_md_is_rendered_from_clap() {
    let path = repo().join("docs/CLI.md");
    let want = cairn::cli::reference::markdown();
    if std::env::var("CAIRN_BLESS").as_deref() == Ok("1") {
        std::fs::write(&path, &want).unwrap();
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "docs/CLI.md is stale: rerun with CAIRN_BLESS=1 (first differing line: {:?})",
        have.lines().zip(want.lines()).find(|(a, b)| a != b)
    );
    // Every documented command is one the parser accepts.
    for line in want.lines().filter(|l| l.starts_with("## `cairn ")) {
        let words: Vec<&str> = line
            .trim_start_matches("## `cairn ")
            .trim_end_matches('`')
            .split(' ')
            .collect();
        let mut args = vec!["cairn"];
        args.extend(&words);
        args.push("--help");
        let e = <cairn::cli::Cli as clap::Parser>::try_parse_from(&args).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::DisplayHelp, "{args:?}");
    }
}

#[test]
fn readme_command_table_is_rendered_from_clap() {
    let path = repo().join("README.md");
    let readme = std::fs::read_to_string(&path).unwrap();
    let table = cairn::cli::reference::summary_table();
    let (Some(s), Some(e)) = (readme.find(START), readme.find(END)) else {
        panic!("README.md lacks the markers {START:?} … {END:?}");
    };
    let have = &readme[s + START.len()..e];
    if have != table && std::env::var("CAIRN_BLESS").as_deref() == Ok("1") {
        let new = format!("{}{START}{table}{}", &readme[..s], &readme[e..]);
        std::fs::write(&path, new).unwrap();
        return;
    }
    assert_eq!(
        have, table,
        "README's command table is stale: rerun with CAIRN_BLESS=1"
    );
}
