//! The supervisor: one `EndpointActor` per endpoint with work on this node, started on
//! first need, replaced if it died (a panic ends its task), retired when its endpoint is
//! deleted or disabled.

use std::collections::HashMap;
use std::sync::Arc;

use actix::prelude::*;

use super::DeliveryContext;
use super::endpoint::{Configure, EndpointActor, Enqueue, Retire};
use super::messages::{Dispatch, EndpointGone, EndpointUpdated, WakeAt};
use super::writer::ResultWriter;
use crate::delivery::sender::build_client;

pub struct Registry {
    ctx: Arc<DeliveryContext>,
    writer: Addr<ResultWriter>,
    scheduler: Recipient<WakeAt>,
    client: Option<awc::Client>,
    endpoints: HashMap<String, Addr<EndpointActor>>,
}

impl Registry {
    pub fn new(ctx: Arc<DeliveryContext>, writer: Addr<ResultWriter>, scheduler: Recipient<WakeAt>) -> Self {
        Self { ctx, writer, scheduler, client: None, endpoints: HashMap::new() }
    }

    fn client(&mut self) -> awc::Client {
        let (policy, timeout) = (self.ctx.policy.clone(), self.ctx.settings.delivery.timeout);
        self.client.get_or_insert_with(|| build_client(policy, timeout)).clone()
    }

    pub fn actor_count(&self) -> usize {
        self.endpoints.len()
    }
}

impl Actor for Registry {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // Actors of deleted endpoints go when their work is done; forget dead addresses.
        ctx.run_interval(std::time::Duration::from_secs(30), |act, _| {
            act.endpoints.retain(|_, addr| addr.connected());
        });
    }
}

impl Handler<Dispatch> for Registry {
    type Result = ();

    fn handle(&mut self, msg: Dispatch, _: &mut Context<Self>) {
        if !msg.endpoint.active {
            return;
        }
        let id = msg.endpoint.id.clone();
        let alive = self.endpoints.get(&id).is_some_and(|a| a.connected());
        if !alive {
            if self.endpoints.remove(&id).is_some() {
                log::error!("endpoint actor {id} died; starting a new one");
                EndpointActor::release_leases(&self.ctx, &id);
            }
            let actor = EndpointActor::new(
                self.ctx.clone(),
                self.client(),
                msg.endpoint.clone(),
                self.writer.clone(),
                self.scheduler.clone(),
            );
            self.endpoints.insert(id.clone(), actor.start());
        }
        if let Some(addr) = self.endpoints.get(&id) {
            addr.do_send(Enqueue { endpoint: msg.endpoint, jobs: msg.jobs });
        }
    }
}

impl Handler<EndpointUpdated> for Registry {
    type Result = ();

    fn handle(&mut self, msg: EndpointUpdated, _: &mut Context<Self>) {
        if let Some(addr) = self.endpoints.get(&msg.0.id) {
            addr.do_send(Configure(msg.0));
        }
    }
}

impl Handler<EndpointGone> for Registry {
    type Result = ();

    fn handle(&mut self, msg: EndpointGone, _: &mut Context<Self>) {
        if let Some(addr) = self.endpoints.remove(&msg.0) {
            addr.do_send(Retire);
        } else {
            EndpointActor::release_leases(&self.ctx, &msg.0);
        }
    }
}

/// How many endpoint actors this node runs (for metrics).
#[derive(Message)]
#[rtype(result = "usize")]
pub struct CountActors;

impl Handler<CountActors> for Registry {
    type Result = usize;

    fn handle(&mut self, _: CountActors, _: &mut Context<Self>) -> usize {
        self.actor_count()
    }
}
