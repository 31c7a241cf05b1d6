//! `ovsnet config show`: every configuration key, its value and where it
//! came from (flag, environment, file, default).

use clap::Subcommand;
use serde::Serialize;

use super::{Format, Global};
use crate::config::{Key, Shown, Source};

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print every key, its value (or unset) and its source: flag, env
    /// OVSNET_X, file PATH:LINE or default. A bad configuration file is one
    /// line naming the file, the line and the key.
    #[command(after_long_help = super::config_help())]
    Show,
}

#[derive(Debug, Serialize)]
struct FileShown {
    path: String,
    source: String,
    read: bool,
}

#[derive(Debug, Serialize)]
struct ConfigShown {
    file: FileShown,
    keys: Vec<Shown>,
}

/// The rows, with the system's host name shown when none is configured
/// (what every command then uses).
fn rows(g: &Global) -> Vec<Shown> {
    let mut rows = g.settings.rows();
    for r in &mut rows {
        if r.key == Key::ClusterDb.name() && g.settings.cluster_db.source == Source::Unset {
            if let (Some(info), Some(remotes)) = (&g.local_db, g.cluster_db()) {
                r.value = Some(remotes.to_owned());
                r.source = format!("this host's {} database in {}", info.model, info.dir.display());
            }
        }
        if r.key == Key::HostName.name() && g.settings.host_name.source == Source::Unset {
            if let Ok(name) = crate::cluster::host::local_host_name(None) {
                r.value = Some(name);
                r.source = "system host name".to_owned();
            }
        }
    }
    rows
}

pub fn run(cmd: ConfigCommand, g: &Global) -> anyhow::Result<()> {
    match cmd {
        ConfigCommand::Show => {
            let file = FileShown {
                path: g.config_file.path.display().to_string(),
                source: g.config_file.source.to_string(),
                read: g.config_read,
            };
            let keys = rows(g);
            match g.format {
                Format::Json => outln!("{}", serde_json::to_string(&ConfigShown { file, keys })?),
                Format::Table => {
                    let state = if file.read { "read" } else { "absent" };
                    outln!("{:<12} {}  ({}, {state})", "config", file.path, file.source);
                    for r in keys {
                        match r.value {
                            Some(v) => outln!("{:<12} {v}  ({})", r.key, r.source),
                            None => outln!("{:<12} unset", r.key),
                        }
                    }
                }
            }
            Ok(())
        }
    }
}
