//! The whitelist rule: the client's next whitelist is the **live** Dfns list plus one change.
//!
//! Computed from the live policy (never from a copy we keep), so a change made at Dfns by other
//! means is not undone; the store's policy-change slot makes sure only one change per client is
//! computed and in flight at a time, so two changes cannot overwrite each other.

use domain::{Address, DestinationAction};

/// The list after applying `action` on `address` to `live`. Order is kept (additions go last),
/// duplicates in `live` collapse to their first occurrence, and comparison is exact: EVM addresses
/// are canonical lowercase by construction ([`Address::canonical`]), and Dfns compares
/// case-sensitively.
pub fn apply_change(live: &[String], action: DestinationAction, address: &Address) -> Vec<String> {
    let target = address.canonical();
    let mut next: Vec<String> = Vec::with_capacity(live.len() + 1);
    for entry in live {
        if !next.contains(entry) {
            next.push(entry.clone());
        }
    }
    match action {
        DestinationAction::Add => {
            if !next.contains(&target) {
                next.push(target);
            }
        }
        DestinationAction::Remove => next.retain(|entry| *entry != target),
    }
    next
}

/// Whether the change is already in effect in `live` (nothing to submit).
pub fn already_in_effect(live: &[String], action: DestinationAction, address: &Address) -> bool {
    let target = address.canonical();
    let present = live.contains(&target);
    match action {
        DestinationAction::Add => present,
        DestinationAction::Remove => !present,
    }
}

#[cfg(test)]
mod tests {
    use domain::Network;

    use super::*;

    const A: &str = "0x52908400098527886e0f7030069857d2e4169ee7";
    const B: &str = "0x8617e340b3d01fa5f11f306f4090fd50e238070d";

    fn addr(raw: &str) -> Address {
        Address::parse(Network::EthereumSepolia, raw).unwrap()
    }

    fn list(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn add_appends_the_canonical_lowercase_form() {
        let checksummed = "0x52908400098527886E0F7030069857D2E4169EE7";
        assert_eq!(
            apply_change(&list(&[B]), DestinationAction::Add, &addr(checksummed)),
            list(&[B, A])
        );
    }

    #[test]
    fn add_of_a_present_address_changes_nothing() {
        assert_eq!(
            apply_change(&list(&[A, B]), DestinationAction::Add, &addr(A)),
            list(&[A, B])
        );
        assert!(already_in_effect(
            &list(&[A, B]),
            DestinationAction::Add,
            &addr(A)
        ));
    }

    #[test]
    fn remove_drops_every_occurrence_and_keeps_the_rest_in_order() {
        assert_eq!(
            apply_change(&list(&[A, B, A]), DestinationAction::Remove, &addr(A)),
            list(&[B])
        );
        assert!(!already_in_effect(
            &list(&[A]),
            DestinationAction::Remove,
            &addr(A)
        ));
        assert!(already_in_effect(
            &list(&[B]),
            DestinationAction::Remove,
            &addr(A)
        ));
    }

    #[test]
    fn entries_from_elsewhere_in_the_live_list_are_kept() {
        // Something added at Dfns directly (even in a form we would not write) is not ours to drop.
        let live = list(&["0xABC-not-ours", B]);
        assert_eq!(
            apply_change(&live, DestinationAction::Add, &addr(A)),
            list(&["0xABC-not-ours", B, A])
        );
    }

    #[test]
    fn duplicates_in_the_live_list_collapse() {
        assert_eq!(
            apply_change(&list(&[B, B]), DestinationAction::Add, &addr(A)),
            list(&[B, A])
        );
    }
}
