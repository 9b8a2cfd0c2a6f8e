// TEMPORARY stub until the real module lands.
#[derive(Debug, Clone)]
pub struct Cidr;
pub fn parse_cidr_list(_s: &str) -> Result<Vec<Cidr>, String> {
    Ok(vec![])
}
