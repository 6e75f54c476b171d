//! `bmon topology apply`: create missing topics, report differing ones, delete nothing.
//!
//! [`plan`] is pure: it compares the declared topology with what the cluster has. The async
//! [`apply_topology`] gathers the cluster state, executes the plan's creations and reports.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bmon_topology::{Topic, Topology};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError as RdKafkaError;
use rdkafka::types::RDKafkaErrorCode;

use crate::ClientSettings;

/// Kafka failures, sorted by what the caller should do.
#[derive(Debug, thiserror::Error)]
pub enum KafkaError {
    /// Settings could not be turned into a client (bad file, bad option). Fatal.
    #[error("client configuration: {0}")]
    Config(String),
    /// The cluster did not answer in time or refused the request. Retryable.
    #[error("broker request `{op}` failed: {source}")]
    Broker {
        /// What was attempted.
        op: &'static str,
        /// rdkafka's error.
        #[source]
        source: RdKafkaError,
    },
    /// A topic could not be created. Fatal for apply.
    #[error("creating topic `{topic}` failed: {code}")]
    Create {
        /// The topic.
        topic: String,
        /// The broker's error code.
        code: RDKafkaErrorCode,
    },
    /// Created topics did not appear in metadata in time. Retryable.
    #[error("topics not visible in metadata after {0:?}: {1:?}")]
    NotVisible(Duration, Vec<String>),
}

/// What the cluster has for one topic.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExistingTopic {
    /// Partition count from metadata.
    pub partitions: i32,
    /// Topic configs from DescribeConfigs; `None` when the broker would not describe them.
    pub configs: Option<BTreeMap<String, String>>,
}

/// A declared setting the cluster has differently.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicDiff {
    /// Topic name.
    pub topic: String,
    /// `partitions` or a Kafka config name.
    pub setting: String,
    /// Value in topology.yaml.
    pub declared: String,
    /// Value on the cluster.
    pub actual: String,
}

/// What apply would do.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    /// Topics to create.
    pub create: Vec<String>,
    /// Existing topics that match.
    pub unchanged: Vec<String>,
    /// Differences on existing topics (reported, never changed).
    pub differ: Vec<TopicDiff>,
    /// Existing topics whose configs the broker would not describe.
    pub unchecked: Vec<String>,
}

/// Compares the declared topology with the cluster's topics.
pub fn plan(topology: &Topology, existing: &BTreeMap<String, ExistingTopic>) -> Plan {
    let mut p = Plan::default();
    for topic in &topology.topics {
        let Some(have) = existing.get(&topic.name) else {
            p.create.push(topic.name.clone());
            continue;
        };
        let before = p.differ.len();
        if have.partitions != topic.partitions {
            p.differ.push(TopicDiff {
                topic: topic.name.clone(),
                setting: "partitions".into(),
                declared: topic.partitions.to_string(),
                actual: have.partitions.to_string(),
            });
        }
        match &have.configs {
            None => p.unchecked.push(topic.name.clone()),
            Some(configs) => {
                for (name, declared) in topic.kafka_configs() {
                    if let Some(actual) = configs.get(name).filter(|a| **a != declared) {
                        p.differ.push(TopicDiff {
                            topic: topic.name.clone(),
                            setting: name.into(),
                            declared,
                            actual: actual.clone(),
                        });
                    }
                }
            }
        }
        if p.differ.len() == before {
            p.unchanged.push(topic.name.clone());
        }
    }
    p
}

/// The outcome of an apply.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ApplyReport {
    /// The plan that was executed; `plan.create` lists the topics created.
    pub plan: Plan,
}

fn broker_err(op: &'static str) -> impl FnOnce(RdKafkaError) -> KafkaError {
    move |source| KafkaError::Broker { op, source }
}

/// Partition counts and (where the broker answers DescribeConfigs) configs of the named topics
/// that exist.
pub async fn describe_topics(
    settings: &ClientSettings,
    names: &[String],
    timeout: Duration,
) -> Result<BTreeMap<String, ExistingTopic>, KafkaError> {
    let config = settings.client_config().map_err(|e| KafkaError::Config(e.to_string()))?;
    let partitions = tokio::task::spawn_blocking(move || -> Result<BTreeMap<String, i32>, KafkaError> {
        let consumer: BaseConsumer = config.create().map_err(broker_err("create metadata client"))?;
        let md = consumer.fetch_metadata(None, timeout).map_err(broker_err("fetch metadata"))?;
        Ok(md
            .topics()
            .iter()
            .filter(|t| t.error().is_none())
            .map(|t| (t.name().to_owned(), t.partitions().len() as i32))
            .collect())
    })
    .await
    .map_err(|e| KafkaError::Config(format!("metadata task failed: {e}")))??;

    let admin = admin_client(settings)?;
    let opts = AdminOptions::new().request_timeout(Some(timeout));
    let mut out = BTreeMap::new();
    for name in names {
        let Some(&count) = partitions.get(name) else {
            continue;
        };
        let configs = match admin.describe_configs(&[ResourceSpecifier::Topic(name)], &opts).await {
            Ok(mut results) => match results.pop() {
                Some(Ok(resource)) => Some(
                    resource
                        .entries
                        .into_iter()
                        .filter_map(|e| e.value.map(|v| (e.name, v)))
                        .collect::<BTreeMap<_, _>>(),
                ),
                _ => None,
            },
            Err(_) => None,
        };
        let configs = configs.filter(|c| !c.is_empty());
        out.insert(name.clone(), ExistingTopic { partitions: count, configs });
    }
    Ok(out)
}

fn admin_client(settings: &ClientSettings) -> Result<AdminClient<DefaultClientContext>, KafkaError> {
    settings
        .client_config()
        .map_err(|e| KafkaError::Config(e.to_string()))?
        .create()
        .map_err(broker_err("create admin client"))
}

fn new_topic<'a>(topic: &'a Topic, configs: &'a [(&'static str, String)], default_rf: i16) -> NewTopic<'a> {
    let rf = topic.replication_factor.unwrap_or(default_rf);
    configs
        .iter()
        .fold(NewTopic::new(&topic.name, topic.partitions, TopicReplication::Fixed(rf.into())), |t, (k, v)| t.set(k, v))
}

/// Creates every missing topic of `topology` and reports differing ones. Never deletes or alters
/// an existing topic. Safe to run concurrently: a topic created by someone else meanwhile counts as
/// existing.
pub async fn apply_topology(
    topology: &Topology,
    settings: &ClientSettings,
    default_replication: i16,
    timeout: Duration,
) -> Result<ApplyReport, KafkaError> {
    let names: Vec<String> = topology.topics.iter().map(|t| t.name.clone()).collect();
    let existing = describe_topics(settings, &names, timeout).await?;
    let plan = plan(topology, &existing);
    if !plan.create.is_empty() {
        let admin = admin_client(settings)?;
        let to_create: Vec<&Topic> = topology.topics.iter().filter(|t| plan.create.contains(&t.name)).collect();
        let configs: Vec<Vec<(&'static str, String)>> = to_create.iter().map(|t| t.kafka_configs()).collect();
        let specs: Vec<NewTopic> =
            to_create.iter().zip(&configs).map(|(t, c)| new_topic(t, c, default_replication)).collect();
        let opts = AdminOptions::new().request_timeout(Some(timeout)).operation_timeout(Some(timeout));
        for result in admin.create_topics(&specs, &opts).await.map_err(broker_err("create topics"))? {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((topic, code)) => return Err(KafkaError::Create { topic, code }),
            }
        }
        wait_visible(settings, &plan.create, timeout).await?;
    }
    Ok(ApplyReport { plan })
}

/// Polls metadata until every topic in `names` is visible, or the deadline passes.
async fn wait_visible(settings: &ClientSettings, names: &[String], timeout: Duration) -> Result<(), KafkaError> {
    let deadline = Instant::now() + timeout;
    loop {
        let seen = describe_topics(settings, names, timeout).await?;
        let missing: Vec<String> = names.iter().filter(|n| !seen.contains_key(*n)).cloned().collect();
        if missing.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(KafkaError::NotVisible(timeout, missing));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topology() -> Topology {
        // At run time: a test binary cached from another checkout must read this one's files.
        let root = std::path::PathBuf::from(
            std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()),
        )
        .join("../..");
        Topology::load(root.join("topology.yaml")).unwrap()
    }

    fn matching(t: &Topic) -> ExistingTopic {
        ExistingTopic {
            partitions: t.partitions,
            configs: Some(t.kafka_configs().into_iter().map(|(k, v)| (k.to_owned(), v)).collect()),
        }
    }

    #[test]
    fn empty_cluster_creates_everything() {
        let t = topology();
        let p = plan(&t, &BTreeMap::new());
        assert_eq!(p.create.len(), t.topics.len());
        assert!(p.differ.is_empty() && p.unchanged.is_empty());
    }

    #[test]
    fn matching_cluster_is_unchanged() {
        let t = topology();
        let existing = t.topics.iter().map(|tp| (tp.name.clone(), matching(tp))).collect();
        let p = plan(&t, &existing);
        assert!(p.create.is_empty() && p.differ.is_empty());
        assert_eq!(p.unchanged.len(), t.topics.len());
    }

    #[test]
    fn differences_are_reported_not_created() {
        let t = topology();
        let mut existing: BTreeMap<String, ExistingTopic> =
            t.topics.iter().map(|tp| (tp.name.clone(), matching(tp))).collect();
        let obs = existing.get_mut("bmon.observations").unwrap();
        obs.partitions = 3;
        obs.configs.as_mut().unwrap().insert("retention.ms".into(), "1000".into());
        existing.get_mut("bmon.events").unwrap().configs = None;
        existing.remove("bmon.deadletter");
        let p = plan(&t, &existing);
        assert_eq!(p.create, vec!["bmon.deadletter".to_string()]);
        assert_eq!(p.unchecked, vec!["bmon.events".to_string()]);
        let settings: Vec<&str> = p.differ.iter().map(|d| d.setting.as_str()).collect();
        assert_eq!(settings, vec!["partitions", "retention.ms"]);
        assert_eq!(p.differ[0].declared, "12");
        assert_eq!(p.differ[0].actual, "3");
        assert!(!p.unchanged.contains(&"bmon.observations".to_string()));
    }
}
