//! Conformance cases for `PolicyStore`: containers, guests' containers, policies.

use std::sync::Arc;

use super::assert_not_found;
use crate::model::{Container, Membership, Policy, Role};
use crate::store::Store;
use crate::testing::fixtures::{self, World, at};

fn container(w: &World, key: &str, id: &str) -> Container {
    Container {
        cloud_id: w.site.cloud_id.clone(),
        product_key: w.product.key.clone(),
        key: key.to_owned(),
        container_id: id.to_owned(),
        name: format!("Project {key}"),
    }
}

/// Files the containers `(key, id)` in order on the world's site.
async fn put_containers(store: &dyn Store, w: &World, containers: &[(&str, &str)]) {
    for (key, id) in containers {
        store.put_container(&container(w, key, id)).await.unwrap();
    }
}

pub async fn containers_are_upserted_listed_and_need_a_hosted_product(store: Arc<dyn Store>) {
    let w = World::seed(store.as_ref()).await.unwrap();
    put_containers(store.as_ref(), &w, &[("OPS", "2"), ("DEMO", "1")]).await;
    let mut renamed = container(&w, "DEMO", "1");
    renamed.name = "Renamed".into();
    store.put_container(&renamed).await.unwrap();
    let listed = store
        .containers(&w.site.cloud_id, Some(&w.product.key))
        .await
        .unwrap();
    assert_eq!(listed, vec![renamed, container(&w, "OPS", "2")]);
    let containers = store.containers(&w.site.cloud_id, None).await.unwrap();
    assert_eq!(containers.len(), 2);
    let mut unhosted = container(&w, "X", "9");
    unhosted.product_key = "not-hosted-here".into();
    assert_not_found(store.put_container(&unhosted).await);
}

pub async fn guest_containers_are_replaced_and_need_membership_and_containers(
    store: Arc<dyn Store>,
) {
    let w = World::seed(store.as_ref()).await.unwrap();
    put_containers(store.as_ref(), &w, &[("DEMO", "1"), ("OPS", "2")]).await;
    let (user, site, product) = (&w.user.account_id, &w.site.cloud_id, &w.product.key);
    store
        .put_membership(&Membership {
            account_id: user.clone(),
            cloud_id: site.clone(),
            product_key: product.clone(),
            role: Role::Guest,
            created_at: at(1),
        })
        .await
        .unwrap();
    let keys = |k: &[&str]| k.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    store
        .set_guest_containers(user, site, product, &keys(&["OPS", "DEMO"]))
        .await
        .unwrap();
    assert_eq!(
        store.guest_containers(user, site, product).await.unwrap(),
        keys(&["DEMO", "OPS"])
    );
    store
        .set_guest_containers(user, site, product, &keys(&["OPS"]))
        .await
        .unwrap();
    assert_eq!(
        store.guest_containers(user, site, product).await.unwrap(),
        keys(&["OPS"])
    );
    assert_not_found(
        store
            .set_guest_containers(user, site, product, &keys(&["NOPE"]))
            .await,
    );
    assert_eq!(
        store.guest_containers(user, site, product).await.unwrap(),
        keys(&["OPS"])
    );
}

pub async fn policies_round_trip_and_replace_their_containers(store: Arc<dyn Store>) {
    let w = World::seed(store.as_ref()).await.unwrap();
    put_containers(store.as_ref(), &w, &[("DEMO", "1"), ("OPS", "2")]).await;
    let mut policy = Policy {
        policy_id: fixtures::new_id(),
        cloud_id: w.site.cloud_id.clone(),
        name: "Finance data".into(),
        blocks_apps: true,
        active: false,
        containers: vec![(w.product.key.clone(), "DEMO".into())],
        created_at: at(1),
        updated_at: at(1),
    };
    store.put_policy(&policy, &[]).await.unwrap();
    assert_eq!(
        store.policy(&policy.policy_id).await.unwrap(),
        Some(policy.clone())
    );
    policy.active = true;
    policy.containers = vec![
        (w.product.key.clone(), "DEMO".into()),
        (w.product.key.clone(), "OPS".into()),
    ];
    policy.updated_at = at(2);
    store.put_policy(&policy, &[]).await.unwrap();
    assert_eq!(
        store.policies(&w.site.cloud_id).await.unwrap(),
        vec![policy.clone()]
    );
    let mut bad = policy.clone();
    bad.policy_id = fixtures::new_id();
    bad.containers = vec![(w.product.key.clone(), "NOPE".into())];
    assert_not_found(store.put_policy(&bad, &[]).await);
    assert!(store.policy(&bad.policy_id).await.unwrap().is_none());
}
