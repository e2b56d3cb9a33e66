//! `#[derive(Model)]` for dbroute: use it through `dbroute::Model`, which
//! documents the attributes.

use proc_macro::TokenStream;
use quote::quote;
use syn::{DeriveInput, LitStr, parse_macro_input};

/// Implements `dbroute::Model` for a type: see `dbroute::Model` (the derive
/// macro) for the attributes.
#[proc_macro_derive(Model, attributes(dbroute))]
pub fn derive_model(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    match expand(&input) {
        Ok(tokens) => tokens.into(),
        Err(error) => error.to_compile_error().into(),
    }
}

/// What `#[dbroute(...)]` said.
#[derive(Default)]
struct Attributes {
    name: Option<LitStr>,
    table: Option<LitStr>,
    app: Option<LitStr>,
    tags: Vec<LitStr>,
}

fn expand(input: &DeriveInput) -> syn::Result<proc_macro2::TokenStream> {
    let attributes = attributes(input)?;
    let ident = &input.ident;
    let name = attributes
        .name
        .unwrap_or_else(|| LitStr::new(&ident.to_string(), ident.span()));
    let table = attributes.table.map(|t| quote!(.with_table(#t)));
    let app = attributes.app.map(|a| quote!(.with_app(#a)));
    let tags = &attributes.tags;
    let tags = (!tags.is_empty()).then(|| quote!(.with_tags([#(#tags),*])));
    let (impl_generics, type_generics, where_clause) = input.generics.split_for_impl();
    Ok(quote! {
        impl #impl_generics ::dbroute::Model for #ident #type_generics #where_clause {
            fn model_info() -> &'static ::dbroute::ModelInfo {
                static INFO: ::std::sync::LazyLock<::dbroute::ModelInfo> =
                    ::std::sync::LazyLock::new(|| ::dbroute::ModelInfo::new(#name) #table #app #tags);
                &INFO
            }
        }
    })
}

fn attributes(input: &DeriveInput) -> syn::Result<Attributes> {
    let mut found = Attributes::default();
    for attribute in input.attrs.iter().filter(|a| a.path().is_ident("dbroute")) {
        attribute.parse_nested_meta(|meta| {
            let key = meta.path.get_ident().map(ToString::to_string).unwrap_or_default();
            let slot = match key.as_str() {
                "name" => &mut found.name,
                "table" => &mut found.table,
                "app" => &mut found.app,
                "tags" => {
                    let content;
                    syn::parenthesized!(content in meta.input);
                    let tags = content
                        .parse_terminated(<LitStr as syn::parse::Parse>::parse, syn::Token![,])
                        .map_err(|e| {
                            syn::Error::new(
                                e.span(),
                                "write the tags as string literals: `tags(\"pii\", \"audit\")`",
                            )
                        })?;
                    for tag in tags {
                        not_empty(&tag, "a tag")?;
                        found.tags.push(tag);
                    }
                    return Ok(());
                }
                _ => {
                    let path = &meta.path;
                    let shown = quote!(#path).to_string().replace(' ', "");
                    return Err(meta.error(format!(
                        "unknown key `{shown}`: a model's attributes are `name`, `table`, `app` and `tags(...)`"
                    )));
                }
            };
            let value: LitStr = meta.value()?.parse()?;
            not_empty(&value, &format!("`{key}`"))?;
            if slot.is_some() {
                return Err(syn::Error::new(value.span(), format!("`{key}` is given twice")));
            }
            *slot = Some(value);
            Ok(())
        })?;
    }
    Ok(found)
}

fn not_empty(value: &LitStr, what: &str) -> syn::Result<()> {
    if value.value().trim().is_empty() {
        return Err(syn::Error::new(value.span(), format!("{what} must not be empty")));
    }
    Ok(())
}
