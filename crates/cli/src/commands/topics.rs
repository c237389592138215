//! `buzzer topics` and `buzzer subscriptions [list|create|delete]`.

use buzzer_types::{
    SubscriptionInfo, SubscriptionListResponse, SubscriptionRequest, TopicListResponse,
    WebhookRequest,
};
use clap::{Args, Subcommand};
use serde_json::{Map, Value};

use super::Context;
use crate::output;

#[derive(Debug, Args)]
pub struct SubscriptionsArgs {
    #[command(subcommand)]
    pub command: Option<SubscriptionsCommand>,
}

#[derive(Debug, Subcommand)]
pub enum SubscriptionsCommand {
    /// Subscriptions with their target and delivery health (the default).
    List {
        /// Only this topic's.
        #[arg(long)]
        topic: Option<String>,
    },
    /// Create or replace a subscription: every event published to TOPIC becomes a job in a
    /// queue (--queue) or a signed POST to a URL (--webhook).
    Create {
        /// The topic events are published to.
        topic: String,
        /// The subscription's name, unique within the topic.
        name: String,
        /// Deliver each event as a job in this queue.
        #[arg(long, conflicts_with = "webhook", required_unless_present = "webhook")]
        queue: Option<String>,
        /// Deliver each event as a POST to this URL (signed, Standard Webhooks).
        #[arg(long)]
        webhook: Option<String>,
        /// The webhook's signing secret (`whsec_…`); generated and shown once when absent.
        #[arg(long, requires = "webhook")]
        secret: Option<String>,
        /// Only events whose payload has FIELD equal to VALUE (JSON, else a string); FIELD may
        /// be a dotted path. Repeat for more.
        #[arg(long = "filter", value_name = "FIELD=VALUE")]
        filters: Vec<String>,
    },
    /// Delete a subscription (jobs already delivered stay).
    Delete { topic: String, name: String },
}

/// `buzzer topics`: every topic that has a subscription.
pub async fn topics(ctx: &Context) -> anyhow::Result<()> {
    let list: TopicListResponse = ctx.client.get(&["v1", "topics"], &[]).await?;
    if ctx.json {
        return output::print_json(&list);
    }
    if list.topics.is_empty() {
        return output::print("no topics yet (a topic exists once it has a subscription)");
    }
    let mut t = output::table(&["TOPIC", "SUBSCRIPTIONS"]);
    for topic in &list.topics {
        t.add_row(vec![topic.name.clone(), topic.subscriptions.to_string()]);
    }
    output::print(&t.to_string())
}

pub async fn subscriptions(args: SubscriptionsArgs, ctx: &Context) -> anyhow::Result<()> {
    match args
        .command
        .unwrap_or(SubscriptionsCommand::List { topic: None })
    {
        SubscriptionsCommand::List { topic } => {
            let path = match &topic {
                Some(topic) => vec!["v1", "topics", topic.as_str(), "subscriptions"],
                None => vec!["v1", "subscriptions"],
            };
            let list: SubscriptionListResponse = ctx.client.get(&path, &[]).await?;
            if ctx.json {
                output::print_json(&list)
            } else if list.subscriptions.is_empty() {
                output::print("no subscriptions")
            } else {
                output::print(&subscriptions_table(&list.subscriptions))
            }
        }
        SubscriptionsCommand::Create {
            topic,
            name,
            queue,
            webhook,
            secret,
            filters,
        } => {
            let req = SubscriptionRequest {
                queue,
                webhook: webhook.map(|url| WebhookRequest { url, secret }),
                filter: parse_filters(&filters)?,
            };
            let path = [
                "v1",
                "topics",
                topic.as_str(),
                "subscriptions",
                name.as_str(),
            ];
            let sub: SubscriptionInfo = ctx.client.put(&path, &req).await?;
            if ctx.json {
                return output::print_json(&sub);
            }
            output::print(&format!(
                "subscription {name} of topic {topic} → {}",
                target(&sub)
            ))?;
            if let Some(secret) = sub.webhook.as_ref().and_then(|w| w.secret.as_ref()) {
                output::print(&format!(
                    "signing secret (shown once, keep it for the receiver): {secret}"
                ))?;
            }
            Ok(())
        }
        SubscriptionsCommand::Delete { topic, name } => {
            let path = [
                "v1",
                "topics",
                topic.as_str(),
                "subscriptions",
                name.as_str(),
            ];
            ctx.client.delete(&path).await?;
            if ctx.json {
                output::print_json(&serde_json::json!({"deleted": {"topic": topic, "name": name}}))
            } else {
                output::print(&format!("deleted subscription {name} of topic {topic}"))
            }
        }
    }
}

/// `field=value` pairs; a value that is valid JSON (`30`, `true`, `"x"`) is taken as JSON,
/// anything else as a string.
fn parse_filters(filters: &[String]) -> anyhow::Result<Option<Map<String, Value>>> {
    if filters.is_empty() {
        return Ok(None);
    }
    let mut map = Map::new();
    for f in filters {
        let Some((field, value)) = f.split_once('=') else {
            anyhow::bail!("--filter {f:?} must look like FIELD=VALUE");
        };
        let value = serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_owned()));
        map.insert(field.to_owned(), value);
    }
    Ok(Some(map))
}

fn target(sub: &SubscriptionInfo) -> String {
    match (&sub.queue, &sub.webhook) {
        (Some(queue), _) => format!("queue {queue}"),
        (None, Some(w)) => format!("webhook {}", w.url),
        (None, None) => "-".to_owned(),
    }
}

fn subscriptions_table(subs: &[SubscriptionInfo]) -> String {
    let mut t = output::table(&[
        "TOPIC",
        "NAME",
        "TARGET",
        "FILTER",
        "STATE",
        "LAST STATUS",
        "FAILURES IN A ROW",
    ]);
    for s in subs {
        let filter = s
            .filter
            .as_ref()
            .map_or_else(|| "-".to_owned(), |f| Value::Object(f.clone()).to_string());
        let state = if s.disabled {
            format!("disabled: {}", s.disabled_reason.as_deref().unwrap_or("-"))
        } else {
            "enabled".to_owned()
        };
        let (status, failures) = match &s.delivery {
            Some(d) => (
                d.last_status.map_or("-".to_owned(), |c| c.to_string()),
                d.failures_in_row.to_string(),
            ),
            None => ("-".to_owned(), "-".to_owned()),
        };
        t.add_row(vec![
            s.topic.clone(),
            s.name.clone(),
            target(s),
            filter,
            state,
            status,
            failures,
        ]);
    }
    t.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_take_json_values_else_strings() {
        let f = parse_filters(&["status=paid".into(), "total=30".into(), "vip=true".into()])
            .unwrap()
            .unwrap();
        assert_eq!(
            Value::Object(f),
            serde_json::json!({"status": "paid", "total": 30, "vip": true})
        );
        assert!(parse_filters(&["nonsense".into()]).is_err());
        assert_eq!(parse_filters(&[]).unwrap(), None);
    }
}
