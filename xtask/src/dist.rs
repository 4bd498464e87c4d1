//! `cargo xtask dist`: what a package of `logd` and `logc` installs beside the binaries, made
//! from the binaries' own clap definitions (`logging_service::cli`): man pages (clap_mangen),
//! shell completions (clap_complete) and the systemd units.
//!
//! The tree it writes (by default under `target/dist/`; generated files stay out of git):
//!
//! ```text
//! man/man1/logd.1  man/man1/logc.1  man/man1/logc-send.1  man/man1/logc-bench.1  man/man1/logc-check.1
//! completions/bash/logd  completions/bash/logc          (bash-completion's completionsdir)
//! completions/zsh/_logd  completions/zsh/_logc          (a directory on $fpath)
//! completions/fish/logd.fish  completions/fish/logc.fish  (fish's vendor_completions.d)
//! systemd/logd.service  systemd/logd.socket             (copies of dist/)
//! ```

use std::path::{Path, PathBuf};

use clap::Command;
use clap_complete::Shell;

/// The shells completions are made for, with the file name each one's loader looks for.
const SHELLS: [(Shell, &str); 3] = [
    (Shell::Bash, "bash"),
    (Shell::Zsh, "zsh"),
    (Shell::Fish, "fish"),
];

/// The systemd units of `dist/`, copied as they are.
const UNITS: [&str; 2] = ["logd.service", "logd.socket"];

/// `cargo xtask dist`'s arguments.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub(crate) struct DistArgs {
    /// Where to write the tree [default: <cargo's target dir>/dist]
    #[arg(long, value_name = "DIR")]
    pub(crate) out: Option<PathBuf>,
}

/// The binaries and their commands.
fn commands() -> [Command; 2] {
    [
        logging_service::cli::logd_command(),
        logging_service::cli::logc_command(),
    ]
}

/// One generated file: its path under the output directory and its bytes.
#[derive(Debug)]
struct File {
    path: PathBuf,
    bytes: Vec<u8>,
}

/// The man pages of `cmd` and, recursively, of its subcommands (`logc-send.1`), as
/// clap_mangen renders them; the `help` subcommand gets none.
fn man_pages(cmd: &Command, out: &mut Vec<File>) -> Result<(), String> {
    let mut cmd = cmd.clone().disable_help_subcommand(true);
    cmd.build();
    man_pages_of_built(&cmd, out)
}

fn man_pages_of_built(cmd: &Command, out: &mut Vec<File>) -> Result<(), String> {
    let mut bytes = Vec::new();
    clap_mangen::Man::new(cmd.clone())
        .render(&mut bytes)
        .map_err(|e| format!("cannot render the man page of {}: {e}", cmd.get_name()))?;
    out.push(File {
        path: Path::new("man/man1").join(format!("{}.1", cmd.get_name())),
        bytes,
    });
    for sub in cmd.get_subcommands() {
        let named = sub
            .clone()
            .name(format!("{}-{}", cmd.get_name(), sub.get_name()));
        man_pages_of_built(&named, out)?;
    }
    Ok(())
}

/// The completion scripts of `cmd` for every shell of [`SHELLS`].
fn completions(cmd: &Command, out: &mut Vec<File>) {
    let bin = cmd.get_name().to_owned();
    for (shell, dir) in SHELLS {
        let mut bytes = Vec::new();
        clap_complete::generate(shell, &mut cmd.clone(), &bin, &mut bytes);
        let name = match shell {
            Shell::Zsh => format!("_{bin}"),
            Shell::Fish => format!("{bin}.fish"),
            _ => bin.clone(),
        };
        out.push(File {
            path: Path::new("completions").join(dir).join(name),
            bytes,
        });
    }
}

/// Every file of the tree but the units (which are copied, not generated).
fn generate() -> Result<Vec<File>, String> {
    let mut files = Vec::new();
    for cmd in commands() {
        man_pages(&cmd, &mut files)?;
        completions(&cmd, &mut files);
    }
    Ok(files)
}

/// Writes the tree under `out`; returns the paths written.
fn write_tree(out: &Path, root: &Path) -> Result<Vec<PathBuf>, String> {
    let mut files = generate()?;
    for name in UNITS {
        let unit = root.join("dist").join(name);
        files.push(File {
            path: Path::new("systemd").join(name),
            bytes: std::fs::read(&unit)
                .map_err(|e| format!("cannot read {}: {e}", unit.display()))?,
        });
    }
    let mut written = Vec::new();
    for f in files {
        let path = out.join(&f.path);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        std::fs::write(&path, &f.bytes)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

/// `cargo xtask dist`.
pub(crate) fn run(args: &DistArgs) -> Result<bool, String> {
    let root = crate::workspace_root()?;
    let out = match &args.out {
        Some(dir) => dir.clone(),
        None => crate::metadata::load(&crate::demo::cargo_program())?
            .target_dir
            .join("dist"),
    };
    let written = write_tree(&out, &root)?;
    for p in &written {
        println!("{}", p.display());
    }
    println!("dist: {} files under {}", written.len(), out.display());
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Arg;
    use std::process::Command as Process;

    /// The text of a man page as a reader sees it: roff's `\-` is a `-`.
    fn man_text(bytes: &[u8]) -> String {
        String::from_utf8_lossy(bytes).replace("\\-", "-")
    }

    fn read(dir: &Path, rel: &str) -> String {
        std::fs::read_to_string(dir.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
    }

    /// Every argument a user can type, `--help` and `--version` included, hidden ones not.
    fn visible_args(cmd: &Command) -> Vec<&Arg> {
        cmd.get_arguments().filter(|a| !a.is_hide_set()).collect()
    }

    /// Checks `cmd` (built, named as its man page) and its subcommands against the tree.
    fn check_command(dir: &Path, bin: &str, cmd: &Command, missing: &mut Vec<String>) {
        let page_name = cmd.get_name().to_owned();
        let page = man_text(read(dir, &format!("man/man1/{page_name}.1")).as_bytes());
        let bash = read(dir, &format!("completions/bash/{bin}"));
        let zsh = read(dir, &format!("completions/zsh/_{bin}"));
        let fish = read(dir, &format!("completions/fish/{bin}.fish"));
        let want = |missing: &mut Vec<String>, file: &str, text: &str, needle: String| {
            if !text.contains(&needle) {
                missing.push(format!("{file} lacks `{needle}`"));
            }
        };
        let args = visible_args(cmd);
        assert!(!args.is_empty(), "{page_name} has arguments");
        for arg in args {
            if let Some(long) = arg.get_long() {
                want(missing, &page_name, &page, format!("--{long}"));
                want(missing, "bash", &bash, format!("--{long}"));
                want(missing, "zsh", &zsh, format!("--{long}"));
                want(missing, "fish", &fish, format!("-l {long}"));
            }
            if let Some(short) = arg.get_short() {
                want(missing, &page_name, &page, format!("-{short}"));
                want(missing, "fish", &fish, format!("-s {short}"));
            }
            if arg.is_positional() {
                let names = arg.get_value_names().expect("positionals are named");
                for n in names {
                    want(missing, &page_name, &page, n.to_string());
                }
            }
            for value in arg.get_possible_values() {
                if value.is_hide_set() || !arg.get_action().takes_values() {
                    continue;
                }
                want(missing, &page_name, &page, value.get_name().to_owned());
                want(missing, "zsh", &zsh, value.get_name().to_owned());
                want(missing, "fish", &fish, value.get_name().to_owned());
            }
        }
        for sub in cmd.get_subcommands() {
            for (file, text) in [("bash", &bash), ("zsh", &zsh), ("fish", &fish)] {
                want(missing, file, text, sub.get_name().to_owned());
            }
            want(missing, &page_name, &page, sub.get_name().to_owned());
            let named = sub.clone().name(format!("{page_name}-{}", sub.get_name()));
            check_command(dir, bin, &named, missing);
        }
    }

    /// A man page for each binary and each of its subcommands (clap's own list).
    fn man_pages_expected() -> usize {
        commands()
            .iter()
            .map(|c| {
                1 + c
                    .get_subcommands()
                    .filter(|s| s.get_name() != "help")
                    .count()
            })
            .sum()
    }

    fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("xtask-dist-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn the_man_pages_and_completions_mention_every_option_of_each_binary() {
        let dir = temp_dir("options");
        let root = crate::workspace_root().unwrap();
        let written = write_tree(&dir, &root).unwrap();
        // A page per binary and per subcommand; three shells for each binary; the units.
        assert_eq!(
            written.len(),
            man_pages_expected() + 3 * commands().len() + UNITS.len(),
            "{written:#?}"
        );
        let mut missing = Vec::new();
        for cmd in commands() {
            let bin = cmd.get_name().to_owned();
            let mut cmd = cmd.disable_help_subcommand(true);
            cmd.build();
            check_command(&dir, &bin, &cmd, &mut missing);
        }
        assert!(missing.is_empty(), "{missing:#?}");
        // The option lists really come from the binaries: a few the issue names.
        let logd = man_text(read(&dir, "man/man1/logd.1").as_bytes());
        for needle in ["--udp-rcvbuf", "--metrics", "--log-format", "Exit status:"] {
            assert!(logd.contains(needle), "logd.1 lacks {needle}");
        }
        let check = man_text(read(&dir, "man/man1/logc-check.1").as_bytes());
        assert!(check.contains("HOST:PORT") && check.contains("--data-dir"));
        for name in UNITS {
            assert_eq!(
                read(&dir, &format!("systemd/{name}")),
                read(&root, &format!("dist/{name}"))
            );
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// The operator's guide lists every option of logd and of each logc subcommand.
    #[test]
    fn the_operator_guide_names_every_option() {
        let guide = read(&crate::workspace_root().unwrap(), "docs/logging-service.md");
        let mut missing = Vec::new();
        for cmd in commands() {
            let mut cmd = cmd.disable_help_subcommand(true);
            cmd.build();
            let subs: Vec<&Command> = cmd.get_subcommands().collect();
            for c in std::iter::once(&cmd).chain(subs) {
                for arg in visible_args(c) {
                    if let Some(long) = arg.get_long()
                        && !guide.contains(&format!("--{long}"))
                    {
                        missing.push(format!("{} --{long}", c.get_name()));
                    }
                }
            }
        }
        assert!(
            missing.is_empty(),
            "docs/logging-service.md lacks {missing:?}"
        );
    }

    /// A page that does not mention an option is caught (the check above can fail).
    #[test]
    fn a_page_without_an_option_is_reported() {
        let dir = temp_dir("stripped");
        let root = crate::workspace_root().unwrap();
        write_tree(&dir, &root).unwrap();
        let page = dir.join("man/man1/logd.1");
        let text = std::fs::read_to_string(&page).unwrap();
        std::fs::write(&page, text.replace("udp\\-rcvbuf", "gone")).unwrap();
        let mut cmd = logging_service::cli::logd_command().disable_help_subcommand(true);
        cmd.build();
        let mut missing = Vec::new();
        check_command(&dir, "logd", &cmd, &mut missing);
        assert_eq!(missing, ["logd lacks `--udp-rcvbuf`"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// groff formats every page without a warning (roff that `man` shows as written).
    #[test]
    fn groff_formats_every_page_without_warnings() {
        let Some(groff) = pattern_core::peer::program("groff", "groff-base") else {
            return;
        };
        let dir = temp_dir("groff");
        write_tree(&dir, &crate::workspace_root().unwrap()).unwrap();
        let pages = std::fs::read_dir(dir.join("man/man1")).unwrap();
        let mut n = 0;
        for page in pages {
            let page = page.unwrap().path();
            let out = Process::new(&groff)
                .args(["-man", "-Tutf8", "-ww", "-z"])
                .arg(&page)
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                out.status.success() && err.is_empty(),
                "{}: {err}",
                page.display()
            );
            n += 1;
        }
        assert_eq!(n, man_pages_expected());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// bash loads the completion script and completes an option of logd and a subcommand and
    /// an option of logc, as a user pressing TAB would get them.
    #[test]
    fn bash_completes_options_and_subcommands_from_the_scripts() {
        let Some(bash) = pattern_core::peer::program("bash", "bash") else {
            return;
        };
        let dir = temp_dir("bash");
        write_tree(&dir, &crate::workspace_root().unwrap()).unwrap();
        let complete = |bin: &str, words: &[&str]| {
            let script = format!(
                "source {}; COMP_WORDS=({}); COMP_CWORD={}; COMP_LINE=\"${{COMP_WORDS[*]}}\"; COMP_POINT=${{#COMP_LINE}}; _{bin} {bin} \"${{COMP_WORDS[-1]}}\" \"${{COMP_WORDS[-2]}}\"; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
                dir.join("completions/bash").join(bin).display(),
                words.join(" "),
                words.len() - 1
            );
            let out = Process::new(&bash)
                .args(["--norc", "--noprofile", "-c", &script])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let mut got: Vec<String> = String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(str::to_owned)
                .collect();
            got.sort();
            got
        };
        assert_eq!(complete("logd", &["logd", "--udp-r"]), ["--udp-rcvbuf"]);
        assert_eq!(
            complete("logd", &["logd", "--concurrency", "lea"]),
            ["leader-followers"]
        );
        assert_eq!(complete("logc", &["logc", "ch"]), ["check"]);
        assert_eq!(
            complete("logc", &["logc", "check", "--data"]),
            ["--data-dir"]
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Every file under `dir`, as paths relative to it.
    fn files_under(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let mut todo = vec![dir.to_path_buf()];
        while let Some(d) = todo.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let path = e.unwrap().path();
                if path.is_dir() {
                    todo.push(path);
                } else {
                    out.push(path.strip_prefix(dir).unwrap().to_path_buf());
                }
            }
        }
        out.sort();
        out
    }

    /// The `sudo install` lines of docs/logging-service.md, run as written (through `sh`, for
    /// the globs) but without `sudo` and with every absolute path under a temporary root,
    /// from a directory laid out as the workspace after `cargo build --release` and `cargo
    /// xtask dist` (the test's own executable stands in for the binaries): they install
    /// both binaries, both units, every man page and both commands' completions for bash,
    /// zsh and fish, byte for byte, and nothing else.
    #[test]
    fn the_install_commands_of_the_guide_install_every_file() {
        let Some(sh) = pattern_core::peer::program("sh", "dash") else {
            return;
        };
        let repo = crate::workspace_root().unwrap();
        let ws = temp_dir("install");
        let root = ws.join("root");
        write_tree(&ws.join("target/dist"), &repo).unwrap();
        std::fs::create_dir_all(ws.join("dist")).unwrap();
        for unit in UNITS {
            std::fs::copy(repo.join("dist").join(unit), ws.join("dist").join(unit)).unwrap();
        }
        std::fs::create_dir_all(ws.join("target/release")).unwrap();
        let exe = std::env::current_exe().unwrap();
        for bin in ["logd", "logc"] {
            std::fs::copy(&exe, ws.join("target/release").join(bin)).unwrap();
        }
        let guide = read(&repo, "docs/logging-service.md");
        let lines: Vec<&str> = guide
            .lines()
            .filter(|l| l.starts_with("sudo install "))
            .collect();
        assert!(lines.len() >= 4, "{lines:?}");
        for line in &lines {
            let command = line.split(" #").next().unwrap();
            let words: Vec<String> = command
                .split_whitespace()
                .skip(1) // sudo
                .map(|w| match w.strip_prefix('/') {
                    Some(abs) => root.join(abs).display().to_string(),
                    None => w.to_owned(),
                })
                .collect();
            let out = Process::new(&sh)
                .arg("-c")
                .arg(words.join(" "))
                .current_dir(&ws)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{line}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        // What an operator needs, each from where the build and `cargo xtask dist` put it.
        let mut expected: Vec<(String, PathBuf)> = vec![
            ("usr/local/bin/logd".into(), ws.join("target/release/logd")),
            ("usr/local/bin/logc".into(), ws.join("target/release/logc")),
        ];
        for unit in UNITS {
            expected.push((
                format!("etc/systemd/system/{unit}"),
                repo.join("dist").join(unit),
            ));
        }
        let man = ws.join("target/dist/man/man1");
        let pages = files_under(&man);
        assert_eq!(pages.len(), man_pages_expected());
        for page in pages {
            expected.push((
                format!("usr/local/share/man/man1/{}", page.display()),
                man.join(page),
            ));
        }
        for bin in ["logd", "logc"] {
            let c = ws.join("target/dist/completions");
            expected.extend([
                (
                    format!("usr/share/bash-completion/completions/{bin}"),
                    c.join("bash").join(bin),
                ),
                (
                    format!("usr/local/share/zsh/site-functions/_{bin}"),
                    c.join("zsh").join(format!("_{bin}")),
                ),
                (
                    format!("usr/share/fish/vendor_completions.d/{bin}.fish"),
                    c.join("fish").join(format!("{bin}.fish")),
                ),
            ]);
        }
        expected.sort();
        let installed: Vec<String> = files_under(&root)
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        let wanted: Vec<String> = expected.iter().map(|(p, _)| p.clone()).collect();
        assert_eq!(installed, wanted);
        for (path, source) in &expected {
            assert_eq!(
                std::fs::read(root.join(path)).unwrap(),
                std::fs::read(source).unwrap(),
                "{path}"
            );
        }
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &str| {
            std::fs::metadata(root.join(p))
                .unwrap()
                .permissions()
                .mode()
                & 0o777
        };
        assert_eq!(mode("usr/local/bin/logd"), 0o755);
        assert_eq!(mode("etc/systemd/system/logd.service"), 0o644);
        std::fs::remove_dir_all(&ws).unwrap();
    }
}
