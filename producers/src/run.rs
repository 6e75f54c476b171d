//! The producer's main loop for the log source.

use std::time::Duration;

use tokio::sync::watch;

use crate::ProducerConfig;
use crate::publish::{LogPublisher, NodeIdentity, PublishError};
use crate::tail::{Checkpoint, Follower, Position};

const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Runs the log source until `shutdown` turns true: follow, publish, checkpoint. Broker failures
/// are logged and retried with backoff; after each, the position is re-read from the broker, so
/// nothing is lost or repeated.
pub async fn run_log_source(config: &ProducerConfig, mut shutdown: watch::Receiver<bool>) -> Result<(), PublishError> {
    let node = NodeIdentity {
        node_id: config.node.id.clone(),
        network: config.node.network.clone(),
        implementation: config.node.implementation.into(),
        version: config.node.version.clone(),
    };
    let checkpoint = Checkpoint::new(config.state.dir.join("log.checkpoint"));
    let poll = Duration::from_millis(config.log.poll_ms);
    let mut backoff = Duration::from_millis(500);
    let path = config.log.path.to_string_lossy().into_owned();
    while !*shutdown.borrow() {
        let publisher = match LogPublisher::new(&config.kafka.client(), &config.kafka.log_topic, node.clone(), &path) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?backoff, "cannot reach the log topic; retrying");
                if wait(&mut shutdown, backoff).await {
                    break;
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        match follow(&publisher, &checkpoint, config, poll, &mut shutdown).await {
            Ok(()) => {
                publisher.flush(Duration::from_secs(10));
                return Ok(());
            }
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?backoff, "publishing log facts failed; will resume from the broker's position");
                if wait(&mut shutdown, backoff).await {
                    break;
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
    Ok(())
}

/// Sleeps `d`; true if shutdown was requested meanwhile.
async fn wait(shutdown: &mut watch::Receiver<bool>, d: Duration) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => *shutdown.borrow(),
        _ = shutdown.changed() => true,
    }
}

/// The resume position: what the broker really has, else the local checkpoint.
fn resume_position(publisher: &LogPublisher, checkpoint: &Checkpoint) -> Result<Option<Position>, PublishError> {
    let remote = publisher.recover_position(Duration::from_secs(30))?;
    let local = checkpoint.load().unwrap_or_else(|e| {
        tracing::warn!(error = %e, "ignoring unreadable checkpoint");
        None
    });
    Ok(remote.or(local))
}

async fn follow(
    publisher: &LogPublisher,
    checkpoint: &Checkpoint,
    config: &ProducerConfig,
    poll: Duration,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<(), PublishError> {
    let resume = resume_position(publisher, checkpoint)?;
    tracing::info!(path = %config.log.path.display(), ?resume, partition = publisher.partition(), "following log");
    let mut follower = Follower::open(&config.log.path, resume, config.log.max_line_bytes);
    loop {
        let batches =
            follower.poll().map_err(|e| PublishError::Client(format!("reading {}: {e}", config.log.path.display())))?;
        for batch in &batches {
            publisher.publish(batch.file, &batch.lines).await?;
            if let Some(last) = batch.lines.last() {
                let pos = Position { file: batch.file, offset: last.end };
                if let Err(e) = checkpoint.store(&pos) {
                    tracing::warn!(error = %e, "cannot write checkpoint; the broker still has the position");
                }
            }
        }
        if batches.is_empty() && wait(shutdown, poll).await {
            return Ok(());
        }
        if *shutdown.borrow() {
            return Ok(());
        }
    }
}
