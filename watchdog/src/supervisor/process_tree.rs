//! TEMPORARY minimal version; replaced by the procs branch.
#[derive(Clone, Debug)]
pub struct ProcessTree {
    root: u32,
}
impl ProcessTree {
    pub fn new(root: u32) -> Self {
        ProcessTree { root }
    }
    pub fn root(&self) -> u32 {
        self.root
    }
    pub fn refresh(&self) -> std::io::Result<()> {
        Ok(())
    }
}
#[derive(Clone, Default)]
pub struct ProcessTrees;
impl ProcessTrees {
    pub fn new() -> Self {
        ProcessTrees
    }
    pub fn register(&self, _s: &str, _t: ProcessTree) {}
    pub fn unregister(&self, _s: &str) {}
}
