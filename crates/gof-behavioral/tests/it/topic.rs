//! Publish-subscribe by topic.

use std::cell::RefCell;
use std::rc::Rc;

use gof_behavioral::Error;
use gof_behavioral::observer::{Broker, Message};

type Seen = Rc<RefCell<Vec<String>>>;

fn subscriber(
    broker: &Broker<i32>,
    filter: &str,
    seen: &Seen,
) -> gof_behavioral::observer::Subscription {
    let (log, name) = (Rc::clone(seen), filter.to_owned());
    broker
        .subscribe(filter, move |topic: &str, v: &i32| {
            log.borrow_mut().push(format!("{name} <- {topic}={v}"))
        })
        .unwrap()
}

#[test]
fn subscribers_receive_exactly_the_topics_their_filters_match() {
    let broker = Broker::default();
    let seen = Seen::default();
    let _a = subscriber(&broker, "site/+/temp", &seen);
    let _b = subscriber(&broker, "site/hall/#", &seen);
    let _c = subscriber(&broker, "site/hall/temp", &seen);
    broker.publish("site/hall/temp", 21).unwrap();
    broker.publish("site/roof/temp", 5).unwrap();
    broker.publish("site/hall/door", 1).unwrap();
    broker.publish("other/hall/temp", 0).unwrap();
    assert_eq!(
        *seen.borrow(),
        [
            "site/+/temp <- site/hall/temp=21",
            "site/hall/# <- site/hall/temp=21",
            "site/hall/temp <- site/hall/temp=21",
            "site/+/temp <- site/roof/temp=5",
            "site/hall/# <- site/hall/door=1",
        ]
    );
}

#[test]
fn a_subscriber_may_publish_and_unsubscribe_from_inside_a_delivery() {
    let broker = Broker::default();
    let seen = Seen::default();
    let alarm_guard = Rc::new(RefCell::new(None));
    let (b, slot) = (broker.clone(), Rc::clone(&alarm_guard));
    // A rule: a temperature above 80 raises an alarm on another topic, once.
    *alarm_guard.borrow_mut() = Some(
        broker
            .subscribe("+/temp", move |topic: &str, v: &i32| {
                if *v > 80 {
                    let device = topic.split('/').next().unwrap();
                    b.publish(&format!("{device}/alarm"), *v).unwrap();
                    slot.borrow_mut().take();
                }
            })
            .unwrap(),
    );
    let _all = subscriber(&broker, "#", &seen);
    broker.publish("boiler/temp", 85).unwrap();
    broker.publish("boiler/temp", 90).unwrap();
    assert_eq!(
        *seen.borrow(),
        [
            "# <- boiler/temp=85",
            "# <- boiler/alarm=85",
            "# <- boiler/temp=90"
        ]
    );
    assert_eq!(broker.subscriber_count(), 1);
}

#[test]
fn invalid_topics_and_filters_are_errors_and_deliver_nothing() {
    let broker = Broker::default();
    let seen = Seen::default();
    let _all = subscriber(&broker, "#", &seen);
    assert!(matches!(
        broker.publish("a/+/b", 1),
        Err(Error::InvalidTopic { .. })
    ));
    assert!(matches!(
        broker.publish("", 1),
        Err(Error::InvalidTopic { .. })
    ));
    assert!(matches!(
        broker.subscribe("a/#/b", |_: &str, _: &i32| {}),
        Err(Error::InvalidFilter { .. })
    ));
    assert!(seen.borrow().is_empty());
    assert_eq!(broker.subscriber_count(), 1);
}

#[test]
fn channel_subscribers_get_messages_with_their_topic() {
    let broker = Broker::default();
    let (guard, rx) = broker.subscribe_channel("pump/+").unwrap();
    broker.publish("pump/pressure", 3).unwrap();
    broker.publish("valve/state", 1).unwrap();
    drop(guard);
    broker.publish("pump/pressure", 4).unwrap();
    assert_eq!(
        rx.try_iter().collect::<Vec<_>>(),
        [Message {
            topic: "pump/pressure".to_owned(),
            payload: 3
        }]
    );
}

#[test]
fn a_channel_subscription_ends_when_its_receiver_is_dropped() {
    let broker = Broker::default();
    let (guard, rx) = broker.subscribe_channel("pump/#").unwrap();
    drop(rx);
    broker.publish("valve/state", 1).unwrap();
    assert!(
        guard.is_active(),
        "a message it does not match does not probe the channel"
    );
    broker.publish("pump/pressure", 2).unwrap();
    assert!(!guard.is_active());
    assert_eq!(broker.subscriber_count(), 0);
}
