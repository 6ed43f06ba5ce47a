//! Requests in flight: which upstream holds which id, and who waits for the answer.
//!
//! Every request passes through these tables twice, so they hash with foldhash (seeded per
//! process, several times cheaper than SipHash on short ids).

use crate::jsonrpc::Id;
use foldhash::HashMap;
use smallvec::SmallVec;
use std::collections::VecDeque;
use std::sync::Arc;

/// Requests one upstream may have outstanding before new ones are refused.
pub const MAX_PENDING_PER_UPSTREAM: usize = 16_384;

/// Who waits for the answer to a request sent upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The client, under its own id.
    Client(Id),
    /// One part of a request the gateway fanned out to several upstreams.
    Part { group: u64 },
}

#[derive(Debug, Clone)]
pub struct Pending {
    pub origin: Origin,
    pub method: Arc<str>,
}

/// Client→server requests awaiting a response, per upstream, keyed by the id the upstream saw.
#[derive(Debug, Default)]
pub struct PendingRequests {
    per_upstream: Vec<HashMap<Id, Pending>>,
    /// Client id → where it went, for cancellation (one place, unless fanned out).
    by_client: HashMap<Id, SmallVec<[(usize, Id); 1]>>,
}

impl PendingRequests {
    pub fn new(upstreams: usize) -> Self {
        PendingRequests {
            per_upstream: vec![HashMap::default(); upstreams],
            by_client: HashMap::default(),
        }
    }

    pub fn in_use(&self, upstream: usize, id: &Id) -> bool {
        self.per_upstream[upstream].contains_key(id)
    }

    pub fn is_full(&self, upstream: usize) -> bool {
        self.per_upstream[upstream].len() >= MAX_PENDING_PER_UPSTREAM
    }

    pub fn insert(&mut self, upstream: usize, upstream_id: Id, pending: Pending) {
        if let Origin::Client(client_id) = &pending.origin {
            self.by_client
                .entry(client_id.clone())
                .or_default()
                .push((upstream, upstream_id.clone()));
        }
        self.per_upstream[upstream].insert(upstream_id, pending);
    }

    pub fn take(&mut self, upstream: usize, upstream_id: &Id) -> Option<Pending> {
        let pending = self.per_upstream[upstream].remove(upstream_id)?;
        if let Origin::Client(client_id) = &pending.origin {
            self.forget_client_route(client_id, upstream, upstream_id);
        }
        Some(pending)
    }

    /// Everything outstanding on an upstream that went away.
    pub fn take_all(&mut self, upstream: usize) -> Vec<(Id, Pending)> {
        let drained: Vec<(Id, Pending)> = self.per_upstream[upstream].drain().collect();
        for (upstream_id, p) in &drained {
            if let Origin::Client(client_id) = &p.origin {
                self.forget_client_route(client_id, upstream, upstream_id);
            }
        }
        drained
    }

    /// Where a client request went: (upstream, id it has there).
    pub fn routes_of(&self, client_id: &Id) -> &[(usize, Id)] {
        self.by_client
            .get(client_id)
            .map(SmallVec::as_slice)
            .unwrap_or(&[])
    }

    pub fn client_requests_outstanding(&self) -> usize {
        self.per_upstream.iter().map(HashMap::len).sum()
    }

    fn forget_client_route(&mut self, client_id: &Id, upstream: usize, upstream_id: &Id) {
        if let Some(routes) = self.by_client.get_mut(client_id) {
            routes.retain(|(u, i)| !(*u == upstream && i == upstream_id));
            if routes.is_empty() {
                self.by_client.remove(client_id);
            }
        }
    }
}

/// Server→client requests awaiting the client's response, keyed by the id the client saw.
#[derive(Debug, Default)]
pub struct ServerRequests {
    by_client_id: HashMap<Id, (usize, Id)>,
    by_upstream: HashMap<(usize, Id), Id>,
    /// Ids whose server went away: the client's late answer is dropped without an alert.
    orphaned: VecDeque<Id>,
}

const ORPHANS_REMEMBERED: usize = 1024;

impl ServerRequests {
    pub fn in_use(&self, client_id: &Id) -> bool {
        self.by_client_id.contains_key(client_id)
    }

    pub fn insert(&mut self, client_id: Id, upstream: usize, upstream_id: Id) {
        self.by_upstream
            .insert((upstream, upstream_id.clone()), client_id.clone());
        self.by_client_id.insert(client_id, (upstream, upstream_id));
    }

    pub fn take(&mut self, client_id: &Id) -> Option<(usize, Id)> {
        let (upstream, upstream_id) = self.by_client_id.remove(client_id)?;
        self.by_upstream.remove(&(upstream, upstream_id.clone()));
        Some((upstream, upstream_id))
    }

    /// The id the client knows a server's request under.
    pub fn client_id_of(&self, upstream: usize, upstream_id: &Id) -> Option<&Id> {
        self.by_upstream.get(&(upstream, upstream_id.clone()))
    }

    pub fn orphan_all(&mut self, upstream: usize) {
        let ids: Vec<Id> = self
            .by_client_id
            .iter()
            .filter(|(_, (u, _))| *u == upstream)
            .map(|(c, _)| c.clone())
            .collect();
        for id in ids {
            self.take(&id);
            if self.orphaned.len() == ORPHANS_REMEMBERED {
                self.orphaned.pop_front();
            }
            self.orphaned.push_back(id);
        }
    }

    pub fn was_orphaned(&mut self, client_id: &Id) -> bool {
        match self.orphaned.iter().position(|i| i == client_id) {
            Some(pos) => {
                self.orphaned.remove(pos);
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> Id {
        Id(s.into())
    }

    #[test]
    fn tracks_client_routes_until_answered() {
        let mut p = PendingRequests::new(2);
        let pending = |c: &str| Pending {
            origin: Origin::Client(id(c)),
            method: "tools/call".into(),
        };
        p.insert(0, id("1"), pending("1"));
        p.insert(1, id("\"mcp-watchdog:4\""), pending("1"));
        assert!(p.in_use(0, &id("1")) && !p.in_use(1, &id("1")));
        assert_eq!(p.routes_of(&id("1")).len(), 2);
        assert!(p.take(0, &id("1")).is_some());
        assert!(
            p.take(0, &id("1")).is_none(),
            "a duplicate response finds nothing"
        );
        assert_eq!(p.routes_of(&id("1")), &[(1, id("\"mcp-watchdog:4\""))]);
        assert_eq!(p.take_all(1).len(), 1);
        assert!(p.routes_of(&id("1")).is_empty());
        assert_eq!(p.client_requests_outstanding(), 0);
    }

    #[test]
    fn server_requests_map_both_ways_and_remember_orphans() {
        let mut s = ServerRequests::default();
        s.insert(id("0"), 0, id("0"));
        s.insert(id("\"mcp-watchdog:s1\""), 1, id("0"));
        assert_eq!(
            s.client_id_of(1, &id("0")),
            Some(&id("\"mcp-watchdog:s1\""))
        );
        assert_eq!(s.take(&id("0")), Some((0, id("0"))));
        s.orphan_all(1);
        assert!(!s.in_use(&id("\"mcp-watchdog:s1\"")));
        assert!(s.was_orphaned(&id("\"mcp-watchdog:s1\"")));
        assert!(!s.was_orphaned(&id("\"mcp-watchdog:s1\"")));
    }
}
