//! Publishing outputs through the sinks, with per-input acknowledgement tracking.
//!
//! Each input record's outputs go to the first sink that accepts each one's topic. The input is
//! complete, and its offset may be stored, once every one of those outputs was acknowledged by
//! its sink; inputs complete in order.

use std::collections::VecDeque;

use super::Output;
pub use super::sink::SinkError;
use super::sink::{Ack, Sink};

/// The acknowledgements owed for one input record, and the offset to store once they arrive.
pub(crate) struct Pending {
    pub(crate) source: Option<(String, i32, i64)>,
    acks: Vec<Ack>,
    /// The topic of each output, for the outputs metric once all are acknowledged.
    pub(crate) topics: Vec<String>,
}

/// The sinks, and which input each output belongs to.
pub struct Outputs {
    sinks: Vec<Box<dyn Sink>>,
    pending: VecDeque<Pending>,
}

impl Outputs {
    /// Outputs routed over `sinks` (each output to the first that accepts its topic).
    pub fn new(sinks: Vec<Box<dyn Sink>>) -> Outputs {
        Outputs { sinks, pending: VecDeque::new() }
    }

    /// Queues `outputs`, owed by the input at `source` (topic, partition, offset), if any.
    pub(crate) fn send(&mut self, source: Option<(String, i32, i64)>, outputs: &[Output]) -> Result<(), SinkError> {
        let mut acks = Vec::with_capacity(outputs.len());
        for o in outputs {
            let sink = self
                .sinks
                .iter_mut()
                .find(|s| s.accepts(&o.topic))
                .ok_or_else(|| SinkError::Unrouted(o.topic.clone()))?;
            acks.push(sink.publish(o)?);
        }
        let topics = outputs.iter().map(|o| o.topic.clone()).collect();
        self.pending.push_back(Pending { source, acks, topics });
        Ok(())
    }

    /// Records whose outputs are awaited.
    pub(crate) fn in_flight(&self) -> usize {
        self.pending.len()
    }

    /// Pops the oldest pending record once all its outputs are acknowledged. With `wait`, waits
    /// for them; without, returns `Ok(None)` if any is still outstanding.
    pub(crate) async fn complete_front(&mut self, wait: bool) -> Result<Option<Pending>, SinkError> {
        let Some(front) = self.pending.front_mut() else { return Ok(None) };
        while let Some(ack) = front.acks.last_mut() {
            let result = if wait {
                ack.wait().await
            } else {
                match ack.try_now() {
                    Some(r) => r,
                    None => return Ok(None),
                }
            };
            result?;
            front.acks.pop();
        }
        Ok(self.pending.pop_front())
    }

    /// Drops what is pending (after a failure: those inputs are consumed again), and what the
    /// sinks still queue.
    pub(crate) fn abandon(&mut self) {
        self.pending.clear();
        for s in &mut self.sinks {
            s.close();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::sink::MemorySink;

    #[test]
    fn an_input_completes_once_its_outputs_are_acknowledged_in_order() {
        let mut outputs = Outputs::new(vec![Box::new(MemorySink::default())]);
        let o = |t: &str| Output { topic: t.into(), key: b"k".to_vec(), payload: b"v".to_vec() };
        outputs.send(Some(("in".into(), 0, 7)), &[o("a"), o("b")]).unwrap();
        outputs.send(Some(("in".into(), 0, 8)), &[]).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let first = rt.block_on(outputs.complete_front(false)).unwrap().unwrap();
        assert_eq!((first.source, first.topics), (Some(("in".into(), 0, 7)), vec!["a".into(), "b".into()]));
        let second = rt.block_on(outputs.complete_front(false)).unwrap().unwrap();
        assert_eq!(second.source, Some(("in".into(), 0, 8)));
        assert_eq!(outputs.in_flight(), 0);
    }
}
