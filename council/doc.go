// Package council diagnoses incidents through two lenses (an LLM or offline rules),
// reports agreement or dissent, and answers follow-up questions. It only advises.
package council
