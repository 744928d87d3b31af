//! `secgraph identity action`: a Defender for Identity response action, planned (dry run) or sent with `--yes`.

use super::Env;
use crate::cli::{Cli, IdentityCmd};

/// Plans the action, prints the plan, and with `--yes` sends it and prints the service's reply.
pub(crate) async fn run(env: &Env, cli: &Cli, cmd: &IdentityCmd) -> anyhow::Result<()> {
    let IdentityCmd::Action {
        account,
        what,
        provider,
        yes,
        json,
    } = cmd;
    let p = env.connect(cli).await?;
    let plan = secgraph::identity::plan(&p, account, what.action(), provider.as_deref()).await?;
    if let Some(already) = &plan.already {
        if *json {
            println!("{}", serde_json::json!({"plan": plan, "sent": false}));
        } else {
            println!("{} ({}): {already}; nothing was sent.", plan.display_name, plan.account);
        }
        return Ok(());
    }
    if !yes {
        if *json {
            println!("{}", serde_json::json!({"plan": plan, "sent": false}));
        } else {
            println!(
                "would send, for {} ({}) through {}:",
                plan.display_name, plan.account, plan.identity_provider
            );
            println!("  {}", plan.request);
            eprintln!("dry run: nothing was sent. Run again with --yes to send it.");
        }
        return Ok(());
    }
    let reply = secgraph::identity::invoke(&p, &plan).await?;
    if *json {
        println!("{}", serde_json::json!({"plan": plan, "sent": true, "reply": reply}));
    } else {
        println!(
            "{} ({}): {} sent through {}; the service answered {}",
            plan.display_name, plan.account, plan.action, plan.identity_provider, reply
        );
    }
    Ok(())
}
