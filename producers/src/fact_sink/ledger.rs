//! Which spooled facts are with the broker: the pure bookkeeping behind [`super::FactSink`].
//!
//! Facts are sent in spool order, so the records in flight are always a prefix of the spool,
//! and the broker reports on one partition's records in the order they were sent. A success
//! report that arrives in order removes the spool's head. After a failure (or a report out of
//! order, which would mean that rule is broken) nothing more is removed or sent directly until
//! every record in flight has been reported; the drainer then sends the spool again from its
//! head, so nothing is lost, and what was acknowledged after the failure is sent twice
//! (downstream deduplicates by envelope key).

/// Most records handed to the broker and not yet reported. Beyond it facts wait in the spool
/// (during an outage librdkafka would otherwise hold a second copy of the whole backlog).
pub const MAX_IN_FLIGHT: u64 = 1000;

/// The broker's answer on one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Acknowledged.
    Acked,
    /// Refused for what it is (too large, invalid): sending it again cannot succeed.
    Rejected,
    /// Not delivered for now (timeout, broker away): it must be sent again.
    Failed,
}

/// Sequence numbers of sent and reported records.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Ledger {
    sent: u64,
    reported: u64,
    broken: bool,
}

impl Ledger {
    /// Records sent and not yet reported.
    pub fn in_flight(&self) -> u64 {
        self.sent - self.reported
    }

    /// True after a failed (or out-of-order) report, until [`Ledger::recover`].
    pub fn is_broken(&self) -> bool {
        self.broken
    }

    /// Whether the record just appended, the `spooled`-th, may be sent at once: every record
    /// before it is in flight, and nothing failed.
    pub fn may_send_next(&self, spooled: u64) -> bool {
        !self.broken && self.in_flight() + 1 == spooled && self.in_flight() < MAX_IN_FLIGHT
    }

    /// The sequence number the next sent record will have. Call [`Ledger::sent`] once it was
    /// queued.
    pub fn next_seq(&self) -> u64 {
        self.sent
    }

    /// Notes that the record numbered [`Ledger::next_seq`] was queued.
    pub fn sent(&mut self) {
        self.sent += 1;
    }

    /// Notes the report for record `seq`; true if the spool's head is to be removed: it was
    /// acknowledged or rejected for good, in order, and nothing failed before it. (A rejected
    /// record is dropped, and the caller counts it.)
    pub fn report(&mut self, seq: u64, delivery: Delivery) -> bool {
        if delivery == Delivery::Failed || seq != self.reported {
            self.broken = true;
        }
        self.reported += 1;
        !self.broken
    }

    /// Notes a failure outside any report (the producer cannot send at all): as after a failed
    /// delivery, the spool is sent again from its head once everything in flight is reported.
    pub fn fail(&mut self) {
        self.broken = true;
    }

    /// After a failure, once everything in flight was reported: clears the failure, so the
    /// spool is sent again from its head. True if it did.
    pub fn recover(&mut self) -> bool {
        let done = self.broken && self.in_flight() == 0;
        if done {
            self.broken = false;
        }
        done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send(l: &mut Ledger) -> u64 {
        let s = l.next_seq();
        l.sent();
        s
    }

    #[test]
    fn in_order_acknowledgements_remove_the_head_each() {
        let mut l = Ledger::default();
        assert!(l.may_send_next(1));
        let a = send(&mut l);
        assert!(l.may_send_next(2), "the earlier record is in flight, so the next may follow it");
        let b = send(&mut l);
        assert!(l.report(a, Delivery::Acked));
        assert!(l.report(b, Delivery::Acked));
        assert_eq!(l.in_flight(), 0);
        assert!(!l.recover(), "nothing failed");
    }

    #[test]
    fn a_record_behind_an_unsent_one_waits_for_the_drainer() {
        let l = Ledger::default();
        assert!(!l.may_send_next(2), "one spooled record was never sent: order first");
    }

    #[test]
    fn after_a_failure_nothing_is_removed_or_sent_until_all_reports_are_in() {
        let mut l = Ledger::default();
        let (a, b, c) = (send(&mut l), send(&mut l), send(&mut l));
        assert!(l.report(a, Delivery::Acked));
        assert!(!l.report(b, Delivery::Failed));
        assert!(!l.may_send_next(3));
        assert!(!l.recover(), "c is still in flight");
        assert!(!l.report(c, Delivery::Acked), "c succeeded after b failed: b is still the head");
        assert!(l.recover());
        assert!(!l.is_broken());
        assert!(l.may_send_next(1), "the drainer resends from the head; new facts follow it");
    }

    #[test]
    fn a_rejected_head_is_removed_and_the_rest_goes_on() {
        let mut l = Ledger::default();
        let (a, b) = (send(&mut l), send(&mut l));
        assert!(l.report(a, Delivery::Rejected), "dropped: sending it again cannot succeed");
        assert!(l.report(b, Delivery::Acked));
        assert!(!l.is_broken());
    }

    #[test]
    fn a_rejection_after_a_failure_removes_nothing() {
        let mut l = Ledger::default();
        let (a, b) = (send(&mut l), send(&mut l));
        assert!(!l.report(a, Delivery::Failed));
        assert!(!l.report(b, Delivery::Rejected), "a is still the head");
    }

    #[test]
    fn a_failure_outside_reports_waits_for_those_in_flight() {
        let mut l = Ledger::default();
        let a = send(&mut l);
        l.fail();
        assert!(!l.may_send_next(2));
        assert!(!l.recover());
        assert!(!l.report(a, Delivery::Acked));
        assert!(l.recover());
    }

    #[test]
    fn a_report_out_of_order_counts_as_a_failure() {
        let mut l = Ledger::default();
        let (a, b) = (send(&mut l), send(&mut l));
        assert!(!l.report(b, Delivery::Acked));
        assert!(!l.report(a, Delivery::Acked));
        assert!(l.recover());
    }

    #[test]
    fn direct_sends_stop_at_the_in_flight_limit() {
        let mut l = Ledger::default();
        for _ in 0..MAX_IN_FLIGHT {
            send(&mut l);
        }
        assert!(!l.may_send_next(MAX_IN_FLIGHT + 1));
    }
}
