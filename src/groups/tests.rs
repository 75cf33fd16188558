use super::*;

fn node(id: u64) -> Groups {
    Groups::new(NodeId(id), Vec::new(), 16, 4096)
}

/// Publishes `from`'s state into `to`, as gossip would.
fn gossip(from: &Groups, to: &mut Groups) -> Vec<GroupEvent> {
    to.observe(from.me, Some(NodeState::decode(&from.own().encode())))
}

#[test]
fn tooz_error_cases() {
    let mut a = node(1);
    assert_eq!(a.join("g", vec![]), Err(GroupError::NotCreated("g".into())));
    assert_eq!(a.create(""), Err(GroupError::BadName));
    assert_eq!(a.create("a\nb"), Err(GroupError::BadName));
    assert_eq!(
        a.create("g").unwrap(),
        vec![GroupEvent::Created { group: "g".into() }]
    );
    assert_eq!(a.create("g"), Err(GroupError::AlreadyExists("g".into())));
    a.join("g", b"x".to_vec()).unwrap();
    assert_eq!(
        a.join("g", vec![]),
        Err(GroupError::AlreadyJoined("g".into()))
    );
    assert_eq!(a.delete("g"), Err(GroupError::NotEmpty("g".into())));
    a.leave("g").unwrap();
    assert_eq!(a.leave("g"), Err(GroupError::NotJoined("g".into())));
    assert_eq!(
        a.update("g", vec![]),
        Err(GroupError::NotJoined("g".into()))
    );
    a.delete("g").unwrap();
    assert_eq!(a.delete("g"), Err(GroupError::NotCreated("g".into())));
    assert!(a.groups().is_empty());
}

#[test]
fn remote_members_join_update_and_fail() {
    let mut a = node(1);
    let mut b = node(2);
    a.create("g").unwrap();
    assert_eq!(
        gossip(&a, &mut b),
        vec![GroupEvent::Created { group: "g".into() }]
    );
    b.join("g", b"gpu".to_vec()).unwrap();
    let ev = gossip(&b, &mut a);
    assert_eq!(
        ev,
        vec![GroupEvent::Joined {
            group: "g".into(),
            member: NodeId(2),
            capabilities: b"gpu".to_vec()
        }]
    );
    b.update("g", b"cpu".to_vec()).unwrap();
    assert!(matches!(
        &gossip(&b, &mut a)[..],
        [GroupEvent::CapabilitiesUpdated {
            member: NodeId(2),
            ..
        }]
    ));
    assert_eq!(a.members("g").unwrap(), vec![(NodeId(2), b"cpu".to_vec())]);
    assert_eq!(a.delete("g"), Err(GroupError::NotEmpty("g".into())));
    // Node 2 fails: it leaves its groups in node 1's view.
    assert_eq!(
        a.observe(NodeId(2), None),
        vec![GroupEvent::Left {
            group: "g".into(),
            member: NodeId(2)
        }]
    );
    assert!(a.members("g").unwrap().is_empty());
    a.delete("g").unwrap();
    assert_eq!(
        gossip(&a, &mut b),
        vec![GroupEvent::Deleted { group: "g".into() }]
    );
}

#[test]
fn registry_outlives_its_author_through_push_pull() {
    let mut a = node(1);
    let mut b = node(2);
    let mut c = node(3);
    a.create("g").unwrap();
    gossip(&a, &mut b);
    b.observe(NodeId(1), None); // node 1 fails
    assert!(b.exists("g"));
    assert_eq!(
        c.merge_shared(&b.shared()),
        vec![GroupEvent::Created { group: "g".into() }]
    );
    assert!(
        c.merge_shared(&[0xff; 7]).is_empty(),
        "garbage changes nothing"
    );
}

#[test]
fn rank_counts_live_lower_candidates() {
    let mut nodes: Vec<Groups> = (1..=4).map(node).collect();
    for n in &mut nodes {
        n.set_running("g", true).unwrap();
    }
    let states: Vec<Vec<u8>> = nodes.iter().map(|n| n.own().encode()).collect();
    let me = &mut nodes[2];
    for (i, s) in states.iter().enumerate() {
        me.observe(NodeId(i as u64 + 1), Some(NodeState::decode(s)));
    }
    assert_eq!(me.rank("g"), 2);
    me.observe(NodeId(1), None);
    assert_eq!(me.rank("g"), 1);
    assert_eq!(me.candidates("g"), vec![NodeId(2), NodeId(3), NodeId(4)]);
    assert_eq!(me.rank("other"), 0);
}

#[test]
fn leader_changes_are_reported_once_each_in_order() {
    let mut a = node(1);
    let mut b = node(2);
    b.set_leading("g", Some(3));
    gossip(&b, &mut a);
    let ch = a.leader_changes();
    assert_eq!(
        ch,
        vec![LeaderChange {
            group: "g".into(),
            leader: Some(NodeId(2)),
            term: 3
        }]
    );
    assert!(a.leader_changes().is_empty());
    a.observe(NodeId(2), None);
    assert_eq!(
        a.leader_changes(),
        vec![LeaderChange {
            group: "g".into(),
            leader: None,
            term: 3
        }]
    );
    a.set_leading("g", Some(4));
    assert_eq!(a.leader("g"), Some((NodeId(1), 4)));
    assert_eq!(a.leader_changes()[0].leader, Some(NodeId(1)));
}

#[test]
fn group_state_is_bounded() {
    let mut a = Groups::new(NodeId(1), Vec::new(), 16, 300);
    a.create("g").unwrap();
    let err = a.join("g", vec![0; 400]).unwrap_err();
    assert!(matches!(err, GroupError::StateTooLarge { limit: 300, .. }));
    assert!(a.own().joined.is_empty(), "nothing changed");
    for i in 0..15 {
        a.create(&format!("g{i}")).unwrap_or_default();
    }
    let mut full = Groups::new(NodeId(1), Vec::new(), 2, 4096);
    full.create("a").unwrap();
    full.create("b").unwrap();
    assert_eq!(full.create("c"), Err(GroupError::TooManyGroups));
}
