// Package detector turns service metrics into detections: health score, learned
// baseline, anomaly, trend, rate of change and policy gates with hysteresis.
package detector
