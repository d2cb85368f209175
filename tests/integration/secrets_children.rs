//! Child processes of the daemon (rule commands, the signing program) see no broker URL
//! or credential variable, and a rule's output reaches the log only up to a cap.

use std::path::Path;
use std::time::Duration;

use crate::util::{BIN, TestVault, wait_until};

fn argv(args: &[&str]) -> String {
    serde_json::to_string(args).expect("json")
}

/// Variables a child must not see, with values that are easy to grep for.
const SECRETS: &[(&str, &str)] = &[
    (
        "VAULTKEEPER_AMQP_URL",
        "amqp://bob:leak-amqp-pw@127.0.0.1:1/",
    ),
    ("AMQP_URL", "amqp://bob:leak-amqp2-pw@127.0.0.1:1/"),
    ("MY_DB_PASSWORD", "leak-db-pw"),
    ("GITHUB_TOKEN", "leak-token"),
    ("app_secret", "leak-lower-secret"),
    ("DATABASE_URL", "postgres://u:leak-url-pw@db/x"),
];

fn with_secrets(v: &TestVault) -> std::process::Command {
    let mut cmd = v.cmd();
    for (k, val) in SECRETS {
        cmd.env(k, val);
    }
    cmd.env("PASS_ME_TOKEN", "passed-on-purpose");
    cmd.env("HARMLESS_VAR", "still-here");
    cmd
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

#[test]
fn rule_commands_do_not_inherit_credentials() {
    let v = TestVault::new(BIN);
    let out = v.state.path().join("env.txt");
    v.set_config(&format!(
        "[[rule]]\nname = \"dump\"\nrun = {}\npass_env = [\"PASS_ME_TOKEN\"]\nenv = {{ EXPLICIT_SECRET = \"given\" }}\n",
        argv(&["sh", "-c", "env > \"$1\"", "sh", &out.to_string_lossy()])
    ));
    let d = v.start_with(with_secrets(&v));
    v.write("a.md", "a");
    wait_until("the rule ran", Duration::from_secs(30), || {
        read(&out).contains("VAULTKEEPER_PATH=a.md")
    });
    let env = read(&out);
    for (k, val) in SECRETS {
        assert!(!env.contains(val), "{k} reached the rule:\n{env}");
    }
    assert!(env.contains("HARMLESS_VAR=still-here"), "{env}");
    assert!(env.contains("PASS_ME_TOKEN=passed-on-purpose"), "{env}");
    assert!(env.contains("EXPLICIT_SECRET=given"), "{env}");
    // Not a graceful stop: the forwarder would spend its drain time on the closed port.
    let log = d.log();
    drop(d);
    for (_, val) in SECRETS {
        assert!(!log.contains(val), "secret in the log:\n{log}");
    }
}

#[test]
fn the_signing_program_does_not_inherit_credentials() {
    let v = TestVault::new(BIN);
    let out = v.state.path().join("signer-env.txt");
    let signer = v.state.path().join("fake-gpg");
    std::fs::write(
        &signer,
        format!(
            "#!/bin/sh\nenv > '{}'\ncat > /dev/null\necho '[GNUPG:] SIG_CREATED D 1 8 00 1 X' >&2\n\
             printf -- '-----BEGIN PGP SIGNATURE-----\\nfake\\n-----END PGP SIGNATURE-----\\n'\n",
            out.display()
        ),
    )
    .expect("signer");
    std::fs::set_permissions(&signer, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    let git = |args: &[&str]| {
        let st = std::process::Command::new("git")
            .arg("-C")
            .arg(&v.root)
            .args(args)
            .status()
            .expect("git");
        assert!(st.success(), "git {args:?}");
    };
    git(&["init", "-q"]);
    git(&["config", "user.name", "T"]);
    git(&["config", "user.email", "t@example.org"]);
    git(&["config", "commit.gpgsign", "true"]);
    git(&["config", "gpg.program", &signer.to_string_lossy()]);
    v.set_config("[git]\nquiet = \"100ms\"\n");
    let d = v.start_with(with_secrets(&v));
    v.write("a.md", "a");
    wait_until("the signer ran", Duration::from_secs(30), || {
        read(&out).contains("PATH=")
    });
    let env = read(&out);
    for (k, val) in SECRETS {
        assert!(!env.contains(val), "{k} reached the signer:\n{env}");
    }
    assert!(env.contains("HARMLESS_VAR=still-here"), "{env}");
    drop(d);
}

#[test]
fn endless_rule_output_is_capped_in_the_log() {
    let v = TestVault::new(BIN);
    v.set_config(&format!(
        "[runner]\nmax_attempts = 1\n[[rule]]\nname = \"spam\"\ntimeout = \"3s\"\nrun = {}\n",
        argv(&[
            "sh",
            "-c",
            "while :; do echo spam-spam-spam-spam-spam-spam-spam; done"
        ])
    ));
    let d = v.start();
    v.write("a.md", "a");
    wait_until("the rule timed out", Duration::from_secs(60), || {
        d.log().contains("timed out")
    });
    let log = d.stop();
    let spam = log.matches("spam-spam").count();
    assert!(
        log.len() < 1024 * 1024,
        "{} bytes of log, {spam} spam lines",
        log.len()
    );
    assert!(spam > 10, "some output is logged: {spam}");
    assert!(log.contains("not logged"), "the cut is said");
}
