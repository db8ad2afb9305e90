//! The docs name only what exists: files and links, command-line flags,
//! config fields, event kinds, and the tests that prove each guarantee. A
//! renamed flag, field, event or test fails here, not in a user's hands.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use candado_pool::{AutoscaleSettings, PoolConfig};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .to_path_buf()
}

/// README.md and every page of docs/, with their text.
fn pages() -> Vec<(PathBuf, String)> {
    let root = root();
    let mut paths = vec![root.join("README.md")];
    let mut docs: Vec<PathBuf> = fs::read_dir(root.join("docs"))
        .expect("docs/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    paths.extend(docs);
    paths
        .into_iter()
        .map(|p| {
            let text = fs::read_to_string(&p).expect("readable page");
            (p, text)
        })
        .collect()
}

/// Every file of the repository (its sources, docs and scripts).
fn files() -> Vec<String> {
    fn walk(dir: &Path, root: &Path, out: &mut Vec<String>) {
        for entry in fs::read_dir(dir).expect("readable dir") {
            let path = entry.expect("entry").path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            if name == "target" || name == ".git" {
                continue;
            }
            if path.is_dir() {
                walk(&path, root, out);
            } else {
                out.push(
                    path.strip_prefix(root)
                        .unwrap()
                        .to_string_lossy()
                        .into_owned(),
                );
            }
        }
    }
    let mut out = Vec::new();
    walk(&root(), &root(), &mut out);
    out
}

/// The text between single backticks, outside fenced code blocks.
fn inline_code(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        let mut parts = line.split('`');
        parts.next();
        while let (Some(code), Some(_)) = (parts.next(), parts.next()) {
            out.push(code.to_owned());
        }
    }
    out
}

/// The lines of fenced code blocks.
fn fenced_lines(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        } else if fenced {
            out.push(line);
        }
    }
    out
}

/// The part of `text` under the heading `heading`, up to the next heading
/// of the same or a higher level.
fn section<'a>(text: &'a str, heading: &str) -> &'a str {
    let start = text
        .find(&format!("\n{heading}\n"))
        .unwrap_or_else(|| panic!("no section {heading:?}"));
    let level = heading.chars().take_while(|c| *c == '#').count();
    let body = &text[start + heading.len() + 2..];
    let end = body
        .lines()
        .scan(0, |offset, line| {
            let here = *offset;
            *offset += line.len() + 1;
            Some((here, line))
        })
        .find(|(_, line)| {
            let hashes = line.chars().take_while(|c| *c == '#').count();
            hashes > 0 && hashes <= level && line[hashes..].starts_with(' ')
        })
        .map_or(body.len(), |(offset, _)| offset);
    &body[..end]
}

#[test]
fn every_link_and_file_the_docs_name_exists_in_the_repository() {
    let root = root();
    let files = files();
    let mut missing = Vec::new();
    for (page, text) in pages() {
        let dir = page.parent().unwrap();
        // Markdown links to local files (not the web, not anchors).
        for link in text.split("](").skip(1) {
            let target = link.split(')').next().unwrap_or_default();
            let target = target.split('#').next().unwrap_or_default();
            if target.is_empty() || target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let path = dir.join(target);
            let inside = path
                .canonicalize()
                .is_ok_and(|p| p.starts_with(root.canonicalize().unwrap()));
            if !inside {
                missing.push(format!("{}: link {target}", page.display()));
            }
        }
        // File paths in inline code, by their path in the repository or
        // their path within a crate.
        for code in inline_code(&text) {
            let is_path = !code.contains(' ')
                && code.contains('/')
                && [".rs", ".md", ".toml", ".sh"]
                    .iter()
                    .any(|e| code.ends_with(e));
            // A glob (`prop_*.rs`) names the files it matches.
            let named = |f: &String| match code.split_once('*') {
                None => *f == code || f.ends_with(&format!("/{code}")),
                Some((before, after)) => {
                    (f.starts_with(before) || f.contains(&format!("/{before}")))
                        && f.ends_with(after)
                }
            };
            if is_path && !files.iter().any(named) {
                missing.push(format!("{}: file {code}", page.display()));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "the docs name what does not exist:\n{missing:#?}"
    );
}

/// The long flags a binary's clap `Args` declares (`#[arg(long ...)]`).
fn long_flags(source: &str) -> BTreeSet<String> {
    let mut flags = BTreeSet::from(["help".to_owned(), "version".to_owned()]);
    let mut after_arg = false;
    for line in source.lines().map(str::trim) {
        if line.starts_with("#[arg(") && line.contains("long") {
            after_arg = true;
        } else if after_arg && !line.starts_with("///") && !line.starts_with("#[") {
            let field = line
                .trim_start_matches("pub ")
                .split(':')
                .next()
                .unwrap_or_default();
            flags.insert(field.trim().replace('_', "-"));
            after_arg = false;
        }
    }
    flags
}

#[test]
fn every_flag_the_docs_name_is_a_flag_of_the_demo_or_compare() {
    let read = |path: &str| fs::read_to_string(root().join(path)).expect(path);
    let mut flags = long_flags(&read("demo-app/src/main.rs"));
    flags.extend(long_flags(&read("benches/src/bin/compare.rs")));
    assert!(
        flags.contains("time-scale") && flags.contains("quick"),
        "{flags:?}"
    );
    let mut unknown = Vec::new();
    for (page, text) in pages() {
        let mut named: Vec<String> = inline_code(&text)
            .into_iter()
            .filter(|code| code.starts_with("--"))
            .collect();
        // Flags passed to our binaries in code blocks (after `--`).
        for line in fenced_lines(&text) {
            if let Some((_, args)) = line.split_once(" -- ") {
                named.extend(args.split_whitespace().map(str::to_owned));
            } else if line.trim_start().starts_with("candado-demo") {
                named.extend(line.split_whitespace().map(str::to_owned));
            }
        }
        for word in named.iter().filter(|w| w.starts_with("--")) {
            let flag = word
                .trim_start_matches("--")
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
                .next()
                .unwrap_or_default();
            if !flag.is_empty() && !flags.contains(flag) {
                unknown.push(format!("{}: --{flag}", page.display()));
            }
        }
    }
    assert!(unknown.is_empty(), "flags no binary has:\n{unknown:#?}");
}

#[test]
fn every_config_field_in_the_pool_table_exists_and_every_field_is_in_it() {
    let full = PoolConfig {
        memory: Some(candado::MemoryConfig::default()),
        autoscale: Some(AutoscaleSettings::default()),
        rate_limit: Some(candado_pool::RateLimitSettings::default()),
        ..PoolConfig::default()
    };
    let config = serde_json::to_value(&full).unwrap();
    let text = fs::read_to_string(root().join("docs/pool.md")).unwrap();
    let table = section(&text, "## Configuration (`PoolConfig`, TOML or JSON)");
    let mut named = BTreeSet::new();
    // Keys named per section (`[restart]` → `base`, `cap`, ...).
    let mut keys_named: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut unknown = Vec::new();
    for row in table.lines().filter(|l| l.starts_with("| `")) {
        let first = row.split('|').nth(1).unwrap_or_default();
        let mut section: Option<String> = None;
        for code in inline_code(first) {
            if let Some(name) = code.strip_prefix('[').and_then(|c| c.strip_suffix(']')) {
                section = Some(name.to_owned());
                if config.get(name).is_none() {
                    unknown.push(format!("[{name}]"));
                }
                named.insert(name.to_owned());
                continue;
            }
            let found = match &section {
                Some(s) => config.get(s).and_then(|v| v.get(&code)).is_some(),
                None => config.get(&code).is_some(),
            };
            if !found {
                unknown.push(format!(
                    "{}{code}",
                    section
                        .as_deref()
                        .map_or(String::new(), |s| format!("[{s}] "))
                ));
            }
            match &section {
                Some(s) => {
                    keys_named.entry(s.clone()).or_default().insert(code);
                }
                None => {
                    named.insert(code);
                }
            }
        }
    }
    assert!(
        unknown.is_empty(),
        "docs/pool.md names fields PoolConfig lacks: {unknown:?}"
    );
    let undocumented: Vec<&String> = config
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| !named.contains(*k))
        .collect();
    assert!(
        undocumented.is_empty(),
        "fields missing from docs/pool.md: {undocumented:?}"
    );
    // Every key of every section, framework knobs included.
    let mut missing = Vec::new();
    for (name, value) in config.as_object().unwrap() {
        let Some(section) = value.as_object() else {
            continue;
        };
        let listed = keys_named.get(name).cloned().unwrap_or_default();
        missing.extend(
            section
                .keys()
                .filter(|k| !listed.contains(*k))
                .map(|k| format!("[{name}] {k}")),
        );
    }
    assert!(
        missing.is_empty(),
        "section keys missing from docs/pool.md: {missing:?}"
    );
}

/// The variants of `pub enum <name>` in a source file, in snake case (their
/// serde tag).
fn event_kinds(path: &str, name: &str) -> BTreeSet<String> {
    let source = fs::read_to_string(root().join(path)).expect(path);
    let start = source
        .find(&format!("pub enum {name} {{"))
        .unwrap_or_else(|| panic!("{name} in {path}"));
    let mut kinds = BTreeSet::new();
    for line in source[start..].lines().skip(1) {
        if line.starts_with('}') {
            break;
        }
        let Some(rest) = line.strip_prefix("    ") else {
            continue;
        };
        if rest.starts_with(|c: char| c.is_ascii_uppercase()) {
            let variant: String = rest
                .chars()
                .take_while(char::is_ascii_alphanumeric)
                .collect();
            let mut snake = String::new();
            for (i, c) in variant.chars().enumerate() {
                if c.is_ascii_uppercase() && i > 0 {
                    snake.push('_');
                }
                snake.push(c.to_ascii_lowercase());
            }
            kinds.insert(snake);
        }
    }
    kinds
}

/// Backticked snake-case words of a docs section.
fn snake_words(text: &str) -> BTreeSet<String> {
    inline_code(text)
        .into_iter()
        .filter(|w| !w.is_empty() && w.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
        .collect()
}

#[test]
fn the_event_kinds_the_docs_list_are_exactly_the_events_there_are() {
    for (page, heading, path, name) in [
        (
            "docs/pool.md",
            "## Events (`Pool::subscribe`)",
            "pool-actors/src/events.rs",
            "PoolEvent",
        ),
        (
            "docs/architecture.md",
            "## Events",
            "framework/src/event.rs",
            "EventKind",
        ),
    ] {
        let text = fs::read_to_string(root().join(page)).unwrap();
        let listed = snake_words(section(&text, heading));
        let kinds = event_kinds(path, name);
        assert!(kinds.len() > 5, "{name}: {kinds:?}");
        let missing: Vec<_> = kinds.difference(&listed).collect();
        assert!(
            missing.is_empty(),
            "{page} does not list {name} kinds {missing:?}"
        );
        // Every word listed that looks like a kind must be one.
        let unknown: Vec<_> = listed
            .iter()
            .filter(|w| w.contains('_') && !kinds.contains(*w))
            .filter(|w| !["at_ms", "event_capacity", "delay_ms"].contains(&w.as_str()))
            .collect();
        assert!(
            unknown.is_empty(),
            "{page} lists {unknown:?}, which {name} lacks"
        );
    }
}

#[test]
fn every_test_the_docs_name_exists() {
    let sources: Vec<String> = files()
        .into_iter()
        .filter(|f| f.ends_with(".rs"))
        .map(|f| fs::read_to_string(root().join(f)).unwrap_or_default())
        .collect();
    let mut missing = Vec::new();
    for (page, text) in pages() {
        for code in inline_code(&text) {
            let name = code.rsplit("::").next().unwrap_or_default();
            let is_test_name = name.matches('_').count() >= 4
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            if is_test_name && !sources.iter().any(|s| s.contains(&format!("fn {name}("))) {
                missing.push(format!("{}: {code}", page.display()));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "the docs name tests that do not exist:\n{missing:#?}"
    );
}

#[test]
fn the_source_maps_name_every_source_file() {
    let text = fs::read_to_string(root().join("docs/architecture.md")).unwrap();
    let mut unnamed = Vec::new();
    for (crate_dir, heading) in [
        ("framework/src/", "## Source map (`framework/src`)"),
        ("pool-actors/src/", "## Source map (`pool-actors/src`)"),
        (
            "process-workers/src/",
            "## Source map (`process-workers/src`)",
        ),
        (
            "postgres-store/src/",
            "## Source map (`postgres-store/src`)",
        ),
        ("observability/src/", "## Source map (`observability/src`)"),
    ] {
        let map = inline_code(section(&text, heading));
        for file in files() {
            let Some(path) = file.strip_prefix(crate_dir) else {
                continue;
            };
            if !path.ends_with(".rs") {
                continue;
            }
            // `health/*` names a whole folder.
            let folder = path.rsplit_once('/').map(|(dir, _)| format!("{dir}/*"));
            if !map.iter().any(|c| c == path || Some(c) == folder.as_ref()) {
                unnamed.push(file);
            }
        }
    }
    assert!(
        unnamed.is_empty(),
        "docs/architecture.md's source maps miss {unnamed:?}"
    );
}
