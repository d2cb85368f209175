//! The `[[rule]]` and `[rules]` config sections, their validation, and compiled rules that match events.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use serde::{Deserialize, Serialize};

use vaultkeeper_core::event::{Event, Kind};

/// A value written either as one string or as a list of strings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    /// `glob = "*.md"`.
    One(String),
    /// `glob = ["*.md", "*.canvas"]`.
    Many(Vec<String>),
}

impl Default for OneOrMany {
    fn default() -> Self {
        OneOrMany::Many(Vec::new())
    }
}

impl OneOrMany {
    /// The values as a slice, whichever way they were written.
    pub fn as_slice(&self) -> &[String] {
        match self {
            OneOrMany::One(s) => std::slice::from_ref(s),
            OneOrMany::Many(v) => v,
        }
    }
}

/// One `[[rule]]`: run a command for matching events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuleConfig {
    /// Shown in logs, dead letters and `VAULTKEEPER_RULE`; defaults to `rule[N]`.
    pub name: Option<String>,
    /// Event kinds (`created` or `file.created`, ...); empty means every kind.
    pub on: OneOrMany,
    /// Vault-relative path globs; empty means every path.
    pub glob: OneOrMany,
    /// The program and its arguments, run directly (never through a shell).
    pub run: Vec<String>,
    /// Coalesce events of one path arriving within this quiet time into one run; 0 = off.
    #[serde(with = "humantime_serde")]
    pub debounce: Duration,
    /// A run still going after this long is killed with its whole process group.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Working directory; relative to the vault root; defaults to the vault root.
    pub cwd: Option<PathBuf>,
    /// Variables set for the command. They may be credentials: what is named here is
    /// passed as written, while the daemon's own credentials are withheld.
    pub env: BTreeMap<String, String>,
    /// Variables of the daemon's environment handed on even though they look like
    /// credentials (`GITHUB_TOKEN`); everything else that does is withheld.
    pub pass_env: Vec<String>,
}

impl Default for RuleConfig {
    fn default() -> Self {
        RuleConfig {
            name: None,
            on: OneOrMany::default(),
            glob: OneOrMany::default(),
            run: Vec::new(),
            debounce: Duration::ZERO,
            timeout: Duration::from_secs(30),
            cwd: None,
            env: BTreeMap::new(),
            pass_env: Vec::new(),
        }
    }
}

/// `[rules]`: settings shared by every rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RulesSection {
    /// Commands running at once, over all rules (events of one path always run in order).
    pub concurrency: usize,
}

impl Default for RulesSection {
    fn default() -> Self {
        RulesSection { concurrency: 4 }
    }
}

/// A rule that does not validate: the dotted key and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct RuleError {
    /// For example `rule[2].run`.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

/// A validated rule, ready to match events.
#[derive(Debug, Clone)]
pub struct Rule {
    /// The configured name, or `rule[N]`.
    pub name: String,
    /// Kinds it fires on; empty = all.
    pub on: Vec<Kind>,
    globs: Option<GlobSet>,
    /// Program and arguments.
    pub run: Vec<String>,
    /// Quiet time for coalescing; zero = off.
    pub debounce: Duration,
    /// Kill after this long.
    pub timeout: Duration,
    /// Absolute working directory.
    pub cwd: PathBuf,
    /// Variables set explicitly (`env`).
    pub env: BTreeMap<String, String>,
    /// Daemon variables handed on despite looking like credentials (`pass_env`).
    pub pass_env: Vec<String>,
}

impl Rule {
    /// Validates `config` (the `index`-th rule) and resolves `cwd` against `vault`.
    pub fn compile(index: usize, config: &RuleConfig, vault: &Path) -> Result<Rule, RuleError> {
        let bad = |key: &str, message: String| RuleError {
            key: format!("rule[{index}].{key}"),
            message,
        };
        let name = match &config.name {
            Some(n) if n.trim().is_empty() => {
                return Err(bad("name", "must not be empty".into()));
            }
            Some(n) => n.clone(),
            None => format!("rule[{index}]"),
        };
        let mut on = Vec::new();
        for (i, word) in config.on.as_slice().iter().enumerate() {
            match Kind::parse(word.trim()) {
                Some(k) if !on.contains(&k) => on.push(k),
                Some(_) => {}
                None => {
                    return Err(bad(
                        &format!("on[{i}]"),
                        format!(
                            "unknown event kind `{word}` (expected created, modified, deleted or renamed, optionally prefixed with `file.`)"
                        ),
                    ));
                }
            }
        }
        let globs = if config.glob.as_slice().is_empty() {
            None
        } else {
            let mut set = GlobSetBuilder::new();
            for (i, pattern) in config.glob.as_slice().iter().enumerate() {
                set.add(glob(pattern).map_err(|e| bad(&format!("glob[{i}]"), e.to_string()))?);
            }
            Some(
                set.build()
                    .map_err(|e| bad("glob", format!("cannot build the globs: {e}")))?,
            )
        };
        if config.run.is_empty() {
            return Err(bad(
                "run",
                "is required and must not be empty (a program and its arguments)".into(),
            ));
        }
        if config.run[0].is_empty() {
            return Err(bad("run[0]", "the program must not be empty".into()));
        }
        if config.timeout.is_zero() {
            return Err(bad("timeout", "must be more than 0s".into()));
        }
        if config.debounce > Duration::from_secs(3600) {
            return Err(bad("debounce", "must be at most 1h".into()));
        }
        let cwd = match &config.cwd {
            Some(c) if c.as_os_str().is_empty() => {
                return Err(bad("cwd", "must not be empty".into()));
            }
            Some(c) => vault.join(c),
            None => vault.to_path_buf(),
        };
        for (key, names) in [
            ("env", config.env.keys().collect::<Vec<_>>()),
            ("pass_env", config.pass_env.iter().collect()),
        ] {
            if let Some(bad_name) = names
                .iter()
                .find(|n| n.is_empty() || n.contains(['=', '\0']))
            {
                return Err(bad(
                    key,
                    format!("`{bad_name}` is not a variable name (empty, or has `=` or NUL)"),
                ));
            }
        }
        // The value may be a secret: name only the key.
        if let Some((k, _)) = config.env.iter().find(|(_, v)| v.contains('\0')) {
            return Err(bad(&format!("env.{k}"), "the value contains NUL".into()));
        }
        Ok(Rule {
            name,
            on,
            globs,
            run: config.run.clone(),
            debounce: config.debounce,
            timeout: config.timeout,
            cwd,
            env: config.env.clone(),
            pass_env: config.pass_env.clone(),
        })
    }

    /// True when the rule fires for `event`: its kind is listed and its path (or, for a
    /// rename, its old path) matches a glob.
    pub fn matches(&self, event: &Event) -> bool {
        if !self.on.is_empty() && !self.on.contains(&event.event) {
            return false;
        }
        match &self.globs {
            None => true,
            Some(set) => {
                set.is_match(&event.file_path)
                    || event.old_path.as_deref().is_some_and(|p| set.is_match(p))
            }
        }
    }
}

/// A pattern without `/` matches the file name in any folder (`*.md`), as in gitignore;
/// otherwise it is anchored at the vault root. `*` stays within one folder, `**` crosses.
fn glob(pattern: &str) -> Result<globset::Glob, GlobError> {
    let trimmed = pattern.trim_start_matches('/');
    if trimmed.is_empty() {
        return Err(GlobError::Empty);
    }
    let full = if pattern.contains('/') {
        trimmed.to_string()
    } else {
        format!("**/{trimmed}")
    };
    GlobBuilder::new(&full)
        .literal_separator(true)
        .build()
        .map_err(|source| GlobError::Bad {
            pattern: pattern.to_string(),
            source,
        })
}

/// Why a `glob` entry is refused.
#[derive(Debug, thiserror::Error)]
enum GlobError {
    #[error("must not be empty")]
    Empty,
    #[error("bad glob `{pattern}`: {source}")]
    Bad {
        pattern: String,
        #[source]
        source: globset::Error,
    },
}

/// Every rule and the shared settings, as one unit that is swapped on reload.
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    /// The rules, in config order.
    pub rules: Vec<Rule>,
    /// Commands running at once.
    pub concurrency: usize,
}

impl RuleSet {
    /// Validates every rule; the first error names its key (`rule[2].run`).
    pub fn compile(
        rules: &[RuleConfig],
        section: &RulesSection,
        vault: &Path,
    ) -> Result<RuleSet, RuleError> {
        if section.concurrency == 0 {
            return Err(RuleError {
                key: "rules.concurrency".into(),
                message: "must be at least 1".into(),
            });
        }
        let rules = rules
            .iter()
            .enumerate()
            .map(|(i, r)| Rule::compile(i, r, vault))
            .collect::<Result<Vec<_>, _>>()?;
        let mut names = std::collections::HashSet::new();
        for (i, r) in rules.iter().enumerate() {
            if !names.insert(r.name.as_str()) {
                return Err(RuleError {
                    key: format!("rule[{i}].name"),
                    message: format!("`{}` is used by an earlier rule", r.name),
                });
            }
        }
        Ok(RuleSet {
            rules,
            concurrency: section.concurrency,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vaultkeeper_core::event::Origin;

    /// A refusal's text, for assertions on what it names.
    #[derive(Debug)]
    struct Refused(String);

    impl std::ops::Deref for Refused {
        type Target = str;
        fn deref(&self) -> &str {
            &self.0
        }
    }

    impl std::fmt::Display for Refused {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(&self.0)
        }
    }

    fn parse(toml_text: &str) -> Result<RuleSet, Refused> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Doc {
            #[serde(default)]
            rule: Vec<RuleConfig>,
            #[serde(default)]
            rules: RulesSection,
        }
        let doc: Doc = toml::from_str(toml_text).map_err(|e| Refused(e.to_string()))?;
        RuleSet::compile(&doc.rule, &doc.rules, Path::new("/vault"))
            .map_err(|e| Refused(e.to_string()))
    }

    fn event(kind: Kind, path: &str, old: Option<&str>) -> Event {
        Event::builder(kind, path)
            .old_path(old.map(Into::into))
            .source("v", "h")
            .origin(Origin::Watch)
            .build()
    }

    #[test]
    fn defaults_match_everything() {
        let set = parse("[[rule]]\nrun = [\"true\"]\n").expect("valid");
        let r = &set.rules[0];
        assert_eq!(r.name, "rule[0]");
        assert_eq!(r.timeout, Duration::from_secs(30));
        assert_eq!(r.debounce, Duration::ZERO);
        assert_eq!(r.cwd, Path::new("/vault"));
        assert_eq!(set.concurrency, 4);
        for k in [Kind::Created, Kind::Modified, Kind::Deleted, Kind::Renamed] {
            assert!(r.matches(&event(k, "any/where.txt", None)));
        }
    }

    #[test]
    fn kinds_in_both_spellings_and_globs() {
        let set = parse(
            "[[rule]]\nname = \"daily\"\non = [\"created\", \"file.renamed\"]\n\
             glob = \"Daily/*.md\"\nrun = [\"x\"]\ncwd = \"scripts\"\ntimeout = \"500ms\"\n\
             [[rule]]\non = \"deleted\"\nglob = [\"*.md\", \"*.canvas\"]\nrun = [\"y\"]\n",
        )
        .expect("valid");
        let daily = &set.rules[0];
        assert_eq!(daily.cwd, Path::new("/vault/scripts"));
        assert_eq!(daily.timeout, Duration::from_millis(500));
        assert!(daily.matches(&event(Kind::Created, "Daily/2024-01-01.md", None)));
        assert!(!daily.matches(&event(Kind::Modified, "Daily/2024-01-01.md", None)));
        // `*` does not cross folders; an anchored pattern does not match elsewhere.
        assert!(!daily.matches(&event(Kind::Created, "Daily/old/x.md", None)));
        assert!(!daily.matches(&event(Kind::Created, "x/Daily/a.md", None)));
        // A rename matches on either side.
        assert!(daily.matches(&event(Kind::Renamed, "Archive/a.md", Some("Daily/a.md"))));
        let del = &set.rules[1];
        // A pattern without `/` matches the name in any folder.
        assert!(del.matches(&event(Kind::Deleted, "a/b/c.md", None)));
        assert!(del.matches(&event(Kind::Deleted, "board.canvas", None)));
        assert!(!del.matches(&event(Kind::Deleted, "img.png", None)));
        assert!(!del.matches(&event(Kind::Created, "c.md", None)));
    }

    #[test]
    fn bad_rules_name_their_key() {
        let cases = [
            ("[[rule]]\nrun = []\n", "rule[0].run: must not be empty"),
            ("[[rule]]\nname = \"x\"\n", "rule[0].run: is required"),
            (
                "[[rule]]\nrun = [\"a\"]\n[[rule]]\nrun = [\"\"]\n",
                "rule[1].run[0]",
            ),
            (
                "[[rule]]\nrun = [\"a\"]\non = [\"created\", \"touched\"]\n",
                "rule[0].on[1]: unknown event kind `touched`",
            ),
            (
                "[[rule]]\nrun = [\"a\"]\nglob = \"a[\"\n",
                "rule[0].glob[0]",
            ),
            (
                "[[rule]]\nrun = [\"a\"]\ntimeout = \"0s\"\n",
                "rule[0].timeout",
            ),
            (
                "[[rule]]\nname = \"a\"\nrun = [\"a\"]\n[[rule]]\nname = \"a\"\nrun = [\"b\"]\n",
                "rule[1].name",
            ),
            ("[rules]\nconcurrency = 0\n", "rules.concurrency"),
        ];
        for (text, want) in cases {
            let err = parse(text).expect_err(text);
            let want = want.replace("must not be empty", "is required and must not be empty");
            assert!(err.contains(&want), "{text:?}: {err}");
        }
    }

    #[test]
    fn unknown_keys_and_bad_durations_are_refused() {
        let err = parse("[[rule]]\nrun = [\"a\"]\ncommand = \"x\"\n").expect_err("unknown");
        assert!(err.contains("command"), "{err}");
        let err = parse("[[rule]]\nrun = [\"a\"]\ntimeout = \"soon\"\n").expect_err("duration");
        assert!(err.contains("timeout"), "{err}");
        let err = parse("[[rule]]\nrun = \"echo hi\"\n").expect_err("run is a list");
        assert!(err.contains("run"), "{err}");
    }

    #[test]
    fn the_commented_example_rules_parse() {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/vaultkeeper.example.toml");
        let text = std::fs::read_to_string(&path).expect("example");
        let start = text.find("# [[rule]]").expect("example rules");
        let rules: String = text[start..]
            .lines()
            .map(|l| format!("{}\n", l.strip_prefix("# ").unwrap_or(l)))
            .collect();
        let set = parse(&rules).expect("example rules are valid");
        assert_eq!(set.rules.len(), 2);
        assert_eq!(set.rules[0].name, "index-new-notes");
    }
}
