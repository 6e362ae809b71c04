//! Conformance cases for `SiteStore`: sites, products, site products and memberships.

use std::sync::Arc;

use super::{assert_not_found, conflict};
use crate::model::{Role, UserInstalls};
use crate::store::Store;
use crate::testing::fixtures::{self, at};

pub async fn site_round_trips_and_duplicate_cloud_id_conflicts(store: Arc<dyn Store>) {
    let mut s = fixtures::site();
    s.avatar_url = Some("https://avatars.example.test/acme.png".into());
    s.user_installs = UserInstalls::Blocked;
    store.insert_site(&s).await.unwrap();
    assert_eq!(store.site(&s.cloud_id).await.unwrap(), Some(s.clone()));
    assert_eq!(store.site("no-such-site").await.unwrap(), None);

    let mut again = fixtures::site();
    again.cloud_id = s.cloud_id.clone();
    assert_eq!(conflict(store.insert_site(&again).await), "sites.cloud_id");

    let mut older = fixtures::site();
    older.created_at = at(-10);
    store.insert_site(&older).await.unwrap();
    assert_eq!(store.list_sites().await.unwrap(), vec![older, s]);
}

pub async fn set_user_installs_changes_the_site_or_is_not_found(store: Arc<dyn Store>) {
    let s = fixtures::site();
    store.insert_site(&s).await.unwrap();
    store
        .set_user_installs(&s.cloud_id, UserInstalls::Blocked)
        .await
        .unwrap();
    let back = store.site(&s.cloud_id).await.unwrap().unwrap();
    assert_eq!(back.user_installs, UserInstalls::Blocked);
    store
        .set_user_installs(&s.cloud_id, UserInstalls::Allowed)
        .await
        .unwrap();
    assert_eq!(store.site(&s.cloud_id).await.unwrap(), Some(s));
    assert_not_found(
        store
            .set_user_installs("no-such-site", UserInstalls::Blocked)
            .await,
    );
}

pub async fn upsert_product_replaces_display_name_and_scopes(store: Arc<dyn Store>) {
    // Catalog order is kept, not sorted.
    let jira = fixtures::product(
        "jira",
        &["write:jira-work", "read:jira-work", "manage:jira"],
    );
    let mut confluence = fixtures::product("confluence", &["read:confluence-content"]);
    confluence.path_aliases = ["/rest/=/wiki/rest/", "/api/v2/=/wiki/api/v2/"]
        .iter()
        .map(|a| crate::model::PathAlias::parse(a).unwrap())
        .collect();
    store.upsert_product(&jira).await.unwrap();
    store.upsert_product(&confluence).await.unwrap();
    assert_eq!(store.product("jira").await.unwrap(), Some(jira.clone()));
    assert_eq!(store.product("confluence").await.unwrap(), Some(confluence));
    assert_eq!(store.product("bitbucket").await.unwrap(), None);

    let mut renamed = fixtures::product("jira", &["read:jira-user", "read:jira-work"]);
    renamed.display_name = "Jira Software".into();
    store.upsert_product(&renamed).await.unwrap();
    assert_eq!(store.product("jira").await.unwrap(), Some(renamed.clone()));

    let empty = fixtures::product("confluence", &[]);
    store.upsert_product(&empty).await.unwrap();
    let mut listed = store.list_products().await.unwrap();
    listed.sort_by(|a, b| a.key.cmp(&b.key));
    assert_eq!(listed, vec![empty, renamed]);
}

/// Jira (with `jira_scopes`) and an empty Confluence, the products the site cases host.
async fn upsert_jira_and_confluence(store: &dyn Store, jira_scopes: &[&str]) {
    store
        .upsert_product(&fixtures::product("jira", jira_scopes))
        .await
        .unwrap();
    store
        .upsert_product(&fixtures::product("confluence", &[]))
        .await
        .unwrap();
}

pub async fn put_site_product_upserts_and_needs_known_site_and_product(store: Arc<dyn Store>) {
    let s = fixtures::site();
    store.insert_site(&s).await.unwrap();
    upsert_jira_and_confluence(store.as_ref(), &["read:jira-work"]).await;
    let site_products = store.site_products(&s.cloud_id).await.unwrap();
    assert!(site_products.is_empty());

    let mut jira = fixtures::site_product(&s.cloud_id, "jira");
    store.put_site_product(&jira).await.unwrap();
    jira.upstream_url = "http://127.0.0.1:8080/jira".into();
    store.put_site_product(&jira).await.unwrap();
    let confluence = fixtures::site_product(&s.cloud_id, "confluence");
    store.put_site_product(&confluence).await.unwrap();
    let mut listed = store.site_products(&s.cloud_id).await.unwrap();
    listed.sort_by(|a, b| a.product_key.cmp(&b.product_key));
    assert_eq!(listed, vec![confluence, jira]);

    assert_not_found(
        store
            .put_site_product(&fixtures::site_product("no-such-site", "jira"))
            .await,
    );
    assert_not_found(
        store
            .put_site_product(&fixtures::site_product(&s.cloud_id, "bitbucket"))
            .await,
    );
}

pub async fn memberships_are_put_changed_listed_and_removed(store: Arc<dyn Store>) {
    let (a, b) = (fixtures::any_account(), fixtures::any_account());
    store.insert_account(&a).await.unwrap();
    store.insert_account(&b).await.unwrap();
    let (s1, s2) = (fixtures::site(), fixtures::site());
    store
        .upsert_product(&fixtures::product("jira", &[]))
        .await
        .unwrap();
    for s in [&s1, &s2] {
        store.insert_site(s).await.unwrap();
        store
            .put_site_product(&fixtures::site_product(&s.cloud_id, "jira"))
            .await
            .unwrap();
    }
    let a1 = fixtures::membership(&a.account_id, &s1.cloud_id, "jira", Role::Member);
    let mut a2 = fixtures::membership(&a.account_id, &s2.cloud_id, "jira", Role::Guest);
    a2.created_at = at(5);
    let b1 = fixtures::membership(&b.account_id, &s1.cloud_id, "jira", Role::Admin);
    for m in [&a1, &a2, &b1] {
        store.put_membership(m).await.unwrap();
    }

    // Changing the role keeps one membership.
    let mut promoted = a1.clone();
    promoted.role = Role::Admin;
    store.put_membership(&promoted).await.unwrap();
    let mut of_a = store.memberships_of_account(&a.account_id).await.unwrap();
    of_a.sort_by(|x, y| x.cloud_id.cmp(&y.cloud_id));
    let mut expected = vec![promoted.clone(), a2.clone()];
    expected.sort_by(|x, y| x.cloud_id.cmp(&y.cloud_id));
    assert_eq!(of_a, expected);

    let mut of_s1 = store.memberships_of_site(&s1.cloud_id).await.unwrap();
    of_s1.sort_by(|x, y| x.account_id.cmp(&y.account_id));
    let mut expected = vec![promoted, b1];
    expected.sort_by(|x, y| x.account_id.cmp(&y.account_id));
    assert_eq!(of_s1, expected);

    assert!(
        store
            .remove_membership(&a.account_id, &s2.cloud_id, "jira")
            .await
            .unwrap()
    );
    assert!(
        !store
            .remove_membership(&a.account_id, &s2.cloud_id, "jira")
            .await
            .unwrap()
    );
    let memberships_of_account = store.memberships_of_account(&a.account_id).await.unwrap();
    assert_eq!(memberships_of_account.len(), 1);
    let memberships_of_site = store.memberships_of_site(&s2.cloud_id).await.unwrap();
    assert!(memberships_of_site.is_empty());
}

pub async fn put_membership_needs_account_site_and_site_product(store: Arc<dyn Store>) {
    let a = fixtures::any_account();
    store.insert_account(&a).await.unwrap();
    let s = fixtures::site();
    store.insert_site(&s).await.unwrap();
    upsert_jira_and_confluence(store.as_ref(), &[]).await;
    store
        .put_site_product(&fixtures::site_product(&s.cloud_id, "jira"))
        .await
        .unwrap();

    for m in [
        fixtures::membership("no-such-account", &s.cloud_id, "jira", Role::Member),
        fixtures::membership(&a.account_id, "no-such-site", "jira", Role::Member),
        // The product exists but the site does not host it.
        fixtures::membership(&a.account_id, &s.cloud_id, "confluence", Role::Member),
    ] {
        assert_not_found(store.put_membership(&m).await);
    }
    let memberships_of_account = store.memberships_of_account(&a.account_id).await.unwrap();
    assert!(memberships_of_account.is_empty());
}

/// Replaces `product`'s operations with `operations` and reads back what the store keeps.
async fn replace_operations(
    store: &dyn Store,
    product: &str,
    operations: &[crate::model::ProductOperation],
) -> Vec<crate::model::ProductOperation> {
    store
        .put_product_operations(product, operations)
        .await
        .unwrap();
    store.product_operations(product).await.unwrap()
}

pub async fn product_operations_are_replaced_whole_and_kept_in_order(store: Arc<dyn Store>) {
    use crate::model::ProductOperation;
    let w = fixtures::World::seed(store.as_ref()).await.unwrap();
    let op = |method: &str, template: &str, alternatives: &[&[&str]]| ProductOperation {
        method: method.to_owned(),
        template: template.to_owned(),
        alternatives: alternatives
            .iter()
            .map(|alt| alt.iter().map(|s| (*s).to_owned()).collect())
            .collect(),
    };
    let first = vec![
        op(
            "GET",
            "/rest/api/3/myself",
            &[&["read:jira-user"], &["read:me", "x|y"]],
        ),
        op("DELETE", "/rest/api/3/issue/{id}", &[]),
    ];
    let stored = replace_operations(store.as_ref(), &w.product.key, &first).await;
    assert_eq!(stored, first);
    let second = vec![op("POST", "/rest/api/3/issue", &[&["write:jira-work"]])];
    let stored = replace_operations(store.as_ref(), &w.product.key, &second).await;
    assert_eq!(stored, second);
    let product_operations = store.product_operations("unknown").await.unwrap();
    assert!(product_operations.is_empty());
    assert_not_found(store.put_product_operations("unknown", &second).await);
}
