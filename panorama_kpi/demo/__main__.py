from panorama_kpi.demo import main

main()
