//! `ovsnet completion SHELL` and `ovsnet man`: shell completion scripts and
//! manual pages, generated from the same definitions as `--help`.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, CommandFactory};
use clap_complete::Shell;

use super::Cli;

#[derive(Debug, Args)]
pub struct CompletionArgs {
    /// bash, zsh, fish, elvish or powershell. For bash, e.g.:
    /// `ovsnet completion bash > /etc/bash_completion.d/ovsnet`.
    pub shell: Shell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write ovsnet.1 and one page per command (ovsnet-attach.1,
    /// ovsnet-network-create.1, ...) into DIR, which must exist; without it,
    /// print ovsnet(1) to standard output (`ovsnet man | man -l -`).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

pub fn completion(args: &CompletionArgs) -> anyhow::Result<()> {
    let mut cmd = Cli::command();
    // Into memory first: the generator panics on a write error.
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "ovsnet", &mut script);
    super::write_stdout(&script);
    Ok(())
}

pub fn man(args: &ManArgs) -> anyhow::Result<()> {
    let mut cmd = Cli::command();
    cmd.build();
    match &args.dir {
        None => {
            let mut page = Vec::new();
            clap_mangen::Man::new(cmd).render(&mut page).context("render the manual page")?;
            super::write_stdout(&page);
            Ok(())
        }
        Some(dir) => {
            if !dir.is_dir() {
                anyhow::bail!("{}: not a directory", dir.display());
            }
            let written = write_pages(&cmd, "ovsnet", dir)?;
            outln!("wrote {written} manual pages to {}", dir.display());
            Ok(())
        }
    }
}

/// Writes `name.1` for `cmd` and, recursively, `name-SUB.1` for each of its
/// subcommands (not `help`); returns how many pages were written.
fn write_pages(cmd: &clap::Command, name: &str, dir: &Path) -> anyhow::Result<usize> {
    let page = cmd.clone().name(name.to_owned());
    let path = dir.join(format!("{name}.1"));
    let mut buf = Vec::new();
    clap_mangen::Man::new(page).render(&mut buf).context("render a manual page")?;
    std::fs::write(&path, buf).with_context(|| format!("write {}", path.display()))?;
    let mut written = 1;
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        written += write_pages(sub, &format!("{name}-{}", sub.get_name()), dir)?;
    }
    Ok(written)
}
