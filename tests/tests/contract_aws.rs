//! The port contract suite (`vigil::contract`) against the AWS backend on moto: every check gets its own
//! freshly bootstrapped tables and queues.

use vigil::contract::Fixture;
use vigil_tests::moto::fresh_backend;

vigil::contract_tests!(async {
    let (backend, _cfg) = fresh_backend().await;
    Fixture { ports: backend.ports(), guard: Box::new(backend) }
});
