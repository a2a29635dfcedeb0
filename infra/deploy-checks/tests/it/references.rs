//! The repository stands alone: nothing it tracks points outside it.
//!
//! Every tracked text file (`git ls-files`, minus lock files and binaries) is read line by line:
//!
//! - no absolute path into the developer machine's work tree;
//! - no relative path that, taken from the file's own directory, climbs out of the repository, nor
//!   one into a sibling `shared` folder that does not exist here (the reference material that
//!   sits beside the repository on the machine it was written on is not part of a clone);
//! - the outside documents the code once cited — the Dfns notes, the design page, the toolchain
//!   and style notes — are named only by a path that exists here (`docs/dfns.md`,
//!   `docs/design.md`, or a relative link from a file beside them);
//! - every `docs/<file>.md` mentioned exists, with the `#anchor`, `§N` section, `UN` entry or
//!   `flow N` the mention cites.
//!
//! Patterns below are assembled at run time so that this file does not trip over itself.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// What the scan needs to know about the repository: its tracked files, and for each
/// `docs/*.md` the anchors, numbered sections, `U` entries and flows a mention may cite.
#[derive(Default)]
struct Repo {
    files: BTreeSet<String>,
    docs: BTreeMap<String, DocIndex>,
}

#[derive(Default)]
struct DocIndex {
    anchors: BTreeSet<String>,
    sections: BTreeSet<String>,
    entries: BTreeSet<String>,
    flows: BTreeSet<String>,
}

impl Repo {
    /// Whether `path` (relative to the root, normalised) is a tracked file or a directory of one.
    fn exists(&self, path: &str) -> bool {
        let path = path.trim_end_matches('/');
        if path.is_empty() {
            return true;
        }
        self.files.contains(path)
            || self
                .files
                .range(format!("{path}/")..)
                .next()
                .is_some_and(|f| f.starts_with(&format!("{path}/")))
    }
}

/// The GitHub anchor of a heading: lower case, letters, digits, `-` and `_` kept, spaces to `-`.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

fn index_doc(text: &str) -> DocIndex {
    let mut index = DocIndex::default();
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        if let Some(rest) = line.strip_prefix('|') {
            // A table row whose first cell is `U<n>`: an entry that can be cited as `U<n>`.
            let cell = rest.split('|').next().unwrap_or("").trim();
            if cell.len() > 1
                && cell.starts_with('U')
                && cell[1..].bytes().all(|b| b.is_ascii_digit())
            {
                index.entries.insert(cell.to_owned());
            }
            continue;
        }
        let Some(heading) = line
            .strip_prefix('#')
            .map(|h| h.trim_start_matches('#'))
            .filter(|h| h.starts_with(' '))
        else {
            continue;
        };
        let heading = heading.trim();
        index.anchors.insert(slug(heading));
        // `## 4. Policies`, `### 4.4 Rules`: the number is a section.
        let number: String = heading
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.')
            .collect();
        let number = number.trim_end_matches('.');
        if !number.is_empty() {
            index.sections.insert(number.to_owned());
        }
        // `### Flow 3 — Reporting`: flow 3.
        if let Some(rest) = heading.strip_prefix("Flow ") {
            let n: String = rest.chars().take_while(char::is_ascii_digit).collect();
            if !n.is_empty() {
                index.flows.insert(n);
            }
        }
    }
    index
}

fn is_path_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b'/' | b'~')
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')
}

/// `a/b` + `../c` → `a/c`; `None` when the path climbs above the root.
fn resolve(base_dir: &str, relative: &str) -> Option<String> {
    let mut parts: Vec<&str> = base_dir.split('/').filter(|p| !p.is_empty()).collect();
    for segment in relative.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            other => parts.push(other),
        }
    }
    Some(parts.join("/"))
}

/// Drops sentence punctuation after a path (`see docs/dfns.md.`), keeping a trailing `..`.
fn trim_token(token: &str) -> &str {
    let mut token = token;
    while token.ends_with('.') && !token.ends_with("..") {
        token = &token[..token.len() - 1];
    }
    token
}

fn forward_end(bytes: &[u8], from: usize) -> usize {
    let mut end = from;
    while end < bytes.len() && is_path_byte(bytes[end]) {
        end += 1;
    }
    end
}

/// The outside documents, as file names (`<name>.md`).
fn outside_doc_names() -> Vec<String> {
    ["dfns-api", "design", "toolchain", "style"]
        .iter()
        .map(|name| format!("{name}.md"))
        .collect()
}

/// Every offence on one line of `path` (its 1-based `line_no`), as `path:line: why`.
fn scan_line(repo: &Repo, path: &str, line_no: usize, line: &str, out: &mut Vec<String>) {
    let bytes = line.as_bytes();
    let dir = path.rsplit_once('/').map_or("", |(dir, _)| dir);
    let mut offend = |why: String| out.push(format!("{path}:{line_no}: {why}"));

    // A developer machine's absolute path.
    let machine = ["", "work", ""].join("/");
    if line.contains(&machine) {
        offend(format!(
            "absolute path outside the repository (`{machine}…`)"
        ));
    }

    // Relative paths climbing out of the repository, or into the missing sibling `shared/`.
    let up = "../";
    let mut from = 0;
    while let Some(found) = line[from..].find(up) {
        let start = from + found;
        from = start + up.len();
        if start > 0 && is_path_byte(bytes[start - 1]) {
            continue; // inside a longer path token, already seen from its start
        }
        let token = trim_token(&line[start..forward_end(bytes, start)]);
        from = start + token.len().max(up.len());
        match resolve(dir, token) {
            None => offend(format!("`{token}` leaves the repository")),
            Some(target) => {
                let first = token.split('/').find(|s| *s != "..");
                if first == Some("shared") && !repo.exists(&target) {
                    offend(format!("`{token}` is outside the repository"));
                }
            }
        }
    }

    // The outside documents, unless named by a path that exists here.
    for name in outside_doc_names() {
        let mut from = 0;
        while let Some(found) = line[from..].find(&name) {
            let start = from + found;
            let end = start + name.len();
            from = end;
            if start > 0 && is_name_byte(bytes[start - 1]) {
                continue; // part of a longer name
            }
            if end < bytes.len() && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_') {
                continue;
            }
            let mut token_start = start;
            while token_start > 0 && is_path_byte(bytes[token_start - 1]) {
                token_start -= 1;
            }
            let token = &line[token_start..end];
            let relative = token.starts_with("./") || token.starts_with("../");
            let from_root = (!relative).then(|| resolve("", token)).flatten();
            let from_dir = resolve(dir, token);
            let found_here = [from_root, from_dir]
                .into_iter()
                .flatten()
                .any(|target| repo.exists(&target));
            if !found_here {
                offend(format!(
                    "`{token}` is not in the repository (cite `docs/dfns.md`, `docs/design.md` or a doc under docs/)"
                ));
            }
        }
    }

    // `docs/<file>.md` mentions: the file, and what the mention cites in it.
    let docs = "docs/";
    let mut from = 0;
    while let Some(found) = line[from..].find(docs) {
        let start = from + found;
        from = start + docs.len();
        if start > 0 && is_path_byte(bytes[start - 1]) {
            continue;
        }
        let token = trim_token(&line[start..forward_end(bytes, start)]);
        from = start + token.len().max(docs.len());
        if !token.ends_with(".md") {
            continue;
        }
        let Some(index) = repo.docs.get(token) else {
            offend(format!("`{token}` does not exist"));
            continue;
        };
        let mut rest = &line[start + token.len()..];
        if let Some(anchored) = rest.strip_prefix('#') {
            let anchor: String = anchored
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '-' || *c == '_')
                .collect();
            if !index.anchors.contains(&anchor) {
                offend(format!("`{token}` has no heading `#{anchor}`"));
            }
            rest = &anchored[anchor.len()..];
        }
        let rest = rest.trim_start_matches(['`', ')', ']', ',', ' ']);
        if let Some(cited) = rest.strip_prefix('§') {
            let cited = cited.trim_start();
            let first: String = cited
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == '.')
                .collect();
            let mut numbers = vec![first.trim_end_matches('.').to_owned()];
            let after = &cited[first.len()..];
            if let Some(range) = after.strip_prefix('–').or_else(|| after.strip_prefix('-')) {
                let second: String = range
                    .chars()
                    .take_while(|c| c.is_ascii_digit() || *c == '.')
                    .collect();
                if !second.is_empty() {
                    numbers.push(second.trim_end_matches('.').to_owned());
                }
            }
            for number in numbers {
                if !index.sections.contains(&number) {
                    offend(format!("`{token}` has no section §{number}"));
                }
            }
        } else if let Some(flow) = rest
            .strip_prefix("flow ")
            .or_else(|| rest.strip_prefix("Flow "))
        {
            let n: String = flow.chars().take_while(char::is_ascii_digit).collect();
            if !n.is_empty() && !index.flows.contains(&n) {
                offend(format!("`{token}` has no flow {n}"));
            }
        } else if let Some(entry) = rest.strip_prefix('U') {
            let n: String = entry.chars().take_while(char::is_ascii_digit).collect();
            if !n.is_empty() && !index.entries.contains(&format!("U{n}")) {
                offend(format!("`{token}` has no entry U{n}"));
            }
        }
    }
}

fn scan(repo: &Repo, path: &str, text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        scan_line(repo, path, i + 1, line, &mut out);
    }
    out
}

/// Lock files are generated and full of registry URLs; they are not read.
fn skipped(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    name == "Cargo.lock" || name == "package-lock.json"
}

/// The tracked files present in the working tree, with their text (`None` for a binary file).
fn tracked(root: &Path) -> Vec<(String, Option<String>)> {
    let output = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(["ls-files", "-z"])
        .output()
        .expect("run `git ls-files` (git must be installed)");
    assert!(
        output.status.success(),
        "`git ls-files` failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .expect("tracked paths are UTF-8")
        .split('\0')
        .filter(|p| !p.is_empty())
        .filter_map(|path| {
            let bytes = std::fs::read(root.join(path)).ok()?; // deleted in the working tree
            let text = String::from_utf8(bytes).ok().filter(|t| !t.contains('\0'));
            Some((path.to_owned(), text))
        })
        .collect()
}

#[test]
fn nothing_tracked_refers_outside_the_repository() {
    let root = repo();
    let files = tracked(&root);
    let mut repo = Repo {
        files: files.iter().map(|(path, _)| path.clone()).collect(),
        docs: BTreeMap::new(),
    };
    for (path, text) in &files {
        if let (true, Some(text)) = (path.starts_with("docs/") && path.ends_with(".md"), text) {
            repo.docs.insert(path.clone(), index_doc(text));
        }
    }
    assert!(
        repo.docs.contains_key("docs/dfns.md") && repo.docs.contains_key("docs/design.md"),
        "docs/dfns.md and docs/design.md must be tracked"
    );
    let mut offences = Vec::new();
    let mut read = 0;
    for (path, text) in &files {
        let Some(text) = text else { continue };
        if skipped(path) {
            continue;
        }
        read += 1;
        offences.extend(scan(&repo, path, text));
    }
    assert!(
        read > 100,
        "only {read} tracked text files read: is this the repository?"
    );
    assert!(
        offences.is_empty(),
        "{} reference(s) to something outside the repository or missing from it:\n  {}",
        offences.len(),
        offences.join("\n  ")
    );
}

/// The scan itself, on made-up files: each kind of offence is found, and the allowed forms pass.
#[test]
fn the_scan_finds_each_kind_of_bad_reference() {
    let doc = "# Title\n## 4. Policies\n### 4.4 Rules\n### Flow 2 — Requests\n| U6 | x |\n";
    let mut repo = Repo::default();
    for file in [
        "docs/dfns.md",
        "docs/design.md",
        "shared/domain/src/lib.rs",
        "README.md",
    ] {
        repo.files.insert(file.to_owned());
    }
    repo.docs.insert("docs/dfns.md".into(), index_doc(doc));
    repo.docs.insert("docs/design.md".into(), index_doc(doc));

    let up = "..";
    let d = "docs";
    let api = ["dfns-api", "md"].join(".");
    let design = ["design", "md"].join(".");
    let toolchain = ["toolchain", "md"].join(".");
    let machine = ["", "work", "shared", ""].join("/");
    let bad = [
        (
            format!("// see {up}/shared/{api} §4"),
            "outside the repository",
        ),
        (
            format!("# trimmed (see {up}/shared/{toolchain})."),
            "outside the repository",
        ),
        (
            format!("//! rules ({api} §4.4)"),
            "is not in the repository",
        ),
        (format!("//! as {design} says"), "is not in the repository"),
        (format!("//! see shared/{api}"), "is not in the repository"),
        (format!("read {machine}seed"), "absolute path"),
        (
            format!("path = \"{up}/{up}/{up}/{up}/elsewhere\""),
            "leaves the repository",
        ),
        (format!("//! {d}/missing.md"), "does not exist"),
        (format!("//! {d}/dfns.md §9"), "no section §9"),
        (format!("//! {d}/dfns.md §4.4–4.7"), "no section §4.7"),
        (format!("//! {d}/dfns.md#no-such-heading"), "no heading"),
        (format!("//! {d}/{design} flow 9"), "no flow 9"),
        (format!("//! {d}/dfns.md U99"), "no entry U99"),
    ];
    for (line, why) in &bad {
        let found = scan(&repo, "shared/platform/src/x.rs", line);
        assert!(
            found
                .iter()
                .any(|f| f.starts_with("shared/platform/src/x.rs:1: ") && f.contains(why)),
            "{line:?} should be refused ({why}): {found:?}"
        );
    }

    let x = "shared/platform/src/x.rs";
    let good = [
        (
            x,
            "//! docs/dfns.md §4.4, docs/dfns.md §4 and docs/dfns.md U6".to_owned(),
        ),
        (
            x,
            "//! Flow 2 (docs/design.md), as in `docs/design.md` flow 2".to_owned(),
        ),
        (x, "[`docs/dfns.md` §4.4](docs/dfns.md#44-rules)".to_owned()),
        (
            x,
            "let url = client.url(&[\"wallets\".into(), \"../auth/x?y\".into()], &[]);".to_owned(),
        ),
        (
            x,
            "an api-design.md or lifestyle.md elsewhere, and docs/ alone".to_owned(),
        ),
        (
            "functions/signup/Cargo.toml",
            format!("domain = {{ path = \"{up}/{up}/shared/domain\" }}"),
        ),
        (
            "docs/dfns.md",
            format!("see the [design]({design}#flow-2--requests)"),
        ),
    ];
    for (path, line) in &good {
        let found = scan(&repo, path, line);
        assert!(found.is_empty(), "{line:?} → {found:?}");
    }
}
