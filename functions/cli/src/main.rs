fn main() {
    println!("distillery: not wired yet");
}
