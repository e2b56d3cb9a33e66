//! The dbroute model of a SeaORM entity: derived from its table name and
//! module path, or mapped.

use sea_orm::EntityTrait;

use dbroute::ModelInfo;

use crate::error::Error;

/// The model of `E` when it is not mapped: named after the entity's module
/// (`billing::invoice::Entity` gives `invoice`; an entity type not named
/// `Entity` gives its own name; an `Entity` at a crate's root gives its
/// table name), with the entity's table, and the module that holds it as
/// the app (`billing`; at the top, the crate's name).
pub(crate) fn derive<E: EntityTrait>() -> Result<ModelInfo, Error> {
    let entity = std::any::type_name::<E>();
    let table = E::default().table_name();
    if table.trim().is_empty() {
        return Err(Error::NoTableName { entity });
    }
    let (name, app) = name_and_app(entity);
    let mut model = ModelInfo::new(name.unwrap_or(table)).with_table(table);
    if let Some(app) = app {
        model = model.with_app(app);
    }
    Ok(model)
}

/// The model's name and app from the entity's type path (`None` for a
/// name: the table's). A path with generic arguments gives neither.
fn name_and_app(path: &str) -> (Option<&str>, Option<&str>) {
    if path.contains('<') {
        return (None, None);
    }
    let mut segments: Vec<&str> = path.split("::").collect();
    let ty = segments.pop();
    match ty {
        Some("Entity") if segments.len() >= 2 => {
            let module = segments.pop();
            (module, segments.last().copied())
        }
        Some("Entity") => (None, segments.last().copied()),
        ty => (ty, segments.last().copied()),
    }
}

#[cfg(test)]
mod tests {
    use super::name_and_app;

    #[test]
    fn names_come_from_the_module_path() {
        let cases = [
            ("shop::billing::invoice::Entity", (Some("invoice"), Some("billing"))),
            ("shop::invoice::Entity", (Some("invoice"), Some("shop"))),
            ("shop::Entity", (None, Some("shop"))),
            ("shop::billing::Invoices", (Some("Invoices"), Some("billing"))),
            ("Invoices", (Some("Invoices"), None)),
            ("shop::Wrapper<shop::a::Entity>", (None, None)),
        ];
        for (path, expected) in cases {
            assert_eq!(name_and_app(path), expected, "{path}");
        }
    }
}
