//! `xc-convert config`

use super::args::{ImageArgs, ProfileArgs};
use super::Session;
use crate::pipeline::image;

/// Configure a kernel tree with a kconfig profile, and prove it.
///
/// Starts from the profile's base (tinyconfig unless it says otherwise),
/// writes every option the profile asks for, runs `make olddefconfig`, then
/// checks each request in the final .config. An option that did not survive
/// is an error naming it and the unmet `depends on` from the Kconfig files;
/// a misspelt option is an error with the closest real symbol.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub image: ImageArgs,
    /// List the available profiles and exit.
    #[arg(long)]
    pub list_profiles: bool,
}

fn list_profiles(s: &Session, profile: &ProfileArgs) -> anyhow::Result<()> {
    let c = profile.profile_ref().catalog()?;
    let list: Vec<_> = c.names().into_iter().map(|n| (c.description(&n).unwrap_or_default(), n)).collect();
    let human = list.iter().map(|(d, n)| format!("{n:10} {d}")).collect::<Vec<_>>().join("\n");
    let value: Vec<_> = list.iter().map(|(d, n)| serde_json::json!({"name": n, "description": d})).collect();
    super::emit(&s.ui, &value, &human);
    Ok(())
}

/// Run `config`.
pub fn exec(s: &Session, args: &Args) -> anyhow::Result<()> {
    if args.list_profiles {
        return list_profiles(s, &args.image.profile);
    }
    let spec = args.image.spec();
    super::prepare_host_for_image(s, &spec)?;
    let c = image::configure(s, &spec)?;
    let human = format!(
        "Linux {} profile {}: {} requested options verified{}\n{}",
        c.tree().version,
        c.profile.name,
        c.verified,
        if c.cache_hit { " (cached)" } else { "" },
        c.dot_config().display()
    );
    let value = serde_json::json!({"configured": c, "cache_hit": c.cache_hit, "dot_config": c.dot_config()});
    super::emit(&s.ui, &value, &human);
    Ok(())
}
