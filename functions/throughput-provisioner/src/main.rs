fn main() {
    // Wired in issue 3: build SDK clients once, hand them to the core handler.
    unimplemented!("not wired yet")
}
