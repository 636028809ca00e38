"""Reception at a center: intake, codes, deadlines, fees, payment, delivery, KPIs."""
