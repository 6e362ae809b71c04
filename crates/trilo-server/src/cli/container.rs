//! `trilo admin container …`: the spaces and projects of a product on a site, which
//! guests are limited to and data security policies cover.

use clap::Subcommand;
use serde_json::json;
use trilo_core::Core;
use trilo_core::model::Container;

use super::admin::{Output, Printed};

#[derive(Debug, Subcommand)]
pub enum ContainerCommand {
    /// Record a space or project (or change its id and name).
    Add {
        /// The site.
        #[arg(long)]
        cloud_id: String,
        #[arg(long)]
        product: String,
        /// The key paths and issue keys use (`DEMO`).
        #[arg(long)]
        key: String,
        /// The id other paths use (`10000`).
        #[arg(long)]
        id: String,
        #[arg(long, default_value = "")]
        name: String,
        #[command(flatten)]
        out: Output,
    },
    /// List a site's spaces and projects.
    List {
        #[arg(long)]
        cloud_id: String,
        #[command(flatten)]
        out: Output,
    },
}

pub async fn run(core: &Core, command: ContainerCommand) -> anyhow::Result<Printed> {
    Ok(match command {
        ContainerCommand::Add {
            cloud_id,
            product,
            key,
            id,
            name,
            out,
        } => {
            let c = core
                .put_container(Container {
                    cloud_id,
                    product_key: product,
                    key,
                    container_id: id,
                    name,
                })
                .await?;
            let text = format!(
                "{} {} {} ({})",
                c.product_key, c.key, c.name, c.container_id
            );
            (out, container_json(&c), text)
        }
        ContainerCommand::List { cloud_id, out } => {
            let list = core.site_containers(&cloud_id).await?;
            let lines: Vec<String> = list
                .iter()
                .map(|c| {
                    format!(
                        "{} {} {} ({})",
                        c.product_key, c.key, c.name, c.container_id
                    )
                })
                .collect();
            (
                out,
                json!(list.iter().map(container_json).collect::<Vec<_>>()),
                lines.join("\n"),
            )
        }
    })
}

fn container_json(c: &Container) -> serde_json::Value {
    json!({
        "cloud_id": c.cloud_id,
        "product": c.product_key,
        "key": c.key,
        "id": c.container_id,
        "name": c.name,
    })
}
